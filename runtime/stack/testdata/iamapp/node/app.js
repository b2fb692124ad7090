// $connect logs who signed the upgrade, as API Gateway describes the
// caller of an AWS_IAM route in requestContext.identity.
exports.connect = async (event) => {
  const id = event.requestContext.identity;
  console.log("identity " + JSON.stringify({
    accessKey: id.accessKey, accountId: id.accountId, caller: id.caller, user: id.user, userArn: id.userArn,
  }));
  return { statusCode: 200 };
};

exports.disconnect = async () => ({ statusCode: 200 });
