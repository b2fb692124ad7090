import json


def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"echo": event.get("say"), "function": context.function_name}
