"""A message route in Python (standard library only) answering through its
route response."""
import json
import os


def handler(event, context):
    body = json.loads(event["body"])
    return {
        "statusCode": 200,
        "body": json.dumps({"python": True, "echo": body.get("say"), "function": context.function_name,
                            "route": event["requestContext"]["routeKey"], "table": os.environ.get("TABLE")}),
    }
