def handle(event, context):
    """Replace with your function: parse the event, call `layers`, return {statusCode, body, headers}."""
    return {"statusCode": 200, "body": {"hello": "world"}}
