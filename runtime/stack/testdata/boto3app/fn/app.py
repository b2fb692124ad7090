"""The Python function of the boto3 tests: it calls AWS by the regional
hostnames, named explicitly so that no AWS_ENDPOINT_URL_* variable decides
where a call goes, and posts what it saw back to the client through the
management API of its own WebSocket API."""

import json
import os

import boto3
import botocore


def handler(event, context):
    ctx = event["requestContext"]
    if ctx["routeKey"] != "$default":
        return {"statusCode": 200}
    region = os.environ["AWS_REGION"]
    out = {}

    ddb = boto3.client("dynamodb", endpoint_url=f"https://dynamodb.{region}.amazonaws.com")
    key = {"id": {"S": ctx["connectionId"]}}
    ddb.put_item(TableName=os.environ["TABLE"], Item=key)
    got = ddb.get_item(TableName=os.environ["TABLE"], Key=key, ConsistentRead=True)
    out["item"] = got["Item"]["id"]["S"]

    lam = boto3.client("lambda", endpoint_url=f"https://lambda.{region}.amazonaws.com")
    r = lam.invoke(FunctionName=os.environ["TARGET"], Payload=json.dumps({"say": "hi"}))
    out["invoke"] = json.loads(r["Payload"].read())

    try:
        boto3.client("sqs").list_queues()
    except botocore.exceptions.ClientError as e:
        out["sqs"] = e.response["Error"]["Code"]

    mgmt = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"https://{ctx['apiId']}.execute-api.{region}.amazonaws.com/{ctx['stage']}",
    )
    mgmt.post_to_connection(ConnectionId=ctx["connectionId"], Data=json.dumps(out).encode())
    return {"statusCode": 200}


def echo(event, context):
    return {"echo": event.get("say"), "function": context.function_name}
