def handler(event, context):
    return {"py": event.get("n"), "name": context.function_name, "left": context.get_remaining_time_in_millis() > 0}


def fails(event, context):
    raise ValueError("nope")
