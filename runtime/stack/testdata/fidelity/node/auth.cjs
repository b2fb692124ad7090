// A REQUEST authorizer that reads the header in the client's case, as
// API Gateway delivers it (a client sending "token" is not "Token").
exports.handler = async (event) => {
  const token = event.headers.token;
  const effect = token === "letmein" ? "Allow" : "Deny";
  return {
    principalId: "user",
    policyDocument: { Version: "2012-10-17", Statement: [{ Action: "execute-api:Invoke", Effect: effect, Resource: event.methodArn }] },
    context: { token: String(token), names: Object.keys(event.headers).filter((k) => k.toLowerCase() === "token").join(",") },
  };
};
