"""A route that runs longer than its integration timeout.

"slow" waits until the file named by the message's "release" exists (the
test creates it once the client has API Gateway's timeout answer), then
prints a line and answers; "echo" answers at once.
"""
import json
import os
import time


def handler(event, context):
    body = json.loads(event.get("body") or "{}")
    if body.get("action") == "slow":
        while not os.path.exists(body["release"]):
            time.sleep(0.01)
        print("slow finished " + body["tag"], flush=True)
        return {"statusCode": 200, "body": "late " + body["tag"]}
    return {"statusCode": 200, "body": "echo"}
