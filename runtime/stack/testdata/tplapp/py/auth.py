"""REQUEST authorizer of the template tests: the token query parameter
decides (standard library only)."""


def policy(effect, arn, principal, context=None):
    out = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": arn}],
        },
    }
    if context:
        out["context"] = context
    return out


def handler(event, context):
    token = event["queryStringParameters"]["token"]
    arn = event["methodArn"]
    if token == "good":
        return policy("Allow", arn, "alice", {"tier": "gold", "connection": event["requestContext"]["connectionId"]})
    if token == "deny":
        return policy("Deny", arn, "mallory")
    if token == "unauth":
        raise Exception("Unauthorized")
    raise RuntimeError("authorizer broke")
