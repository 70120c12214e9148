"""fix: a human correction. JSON {image_url | image_b64, label, user}, or image bytes with ?label=&user=.
Answers only once the image is stored and Kafka acknowledged the fix (201), or 503 when either is down.
Slack: /fix IMAGE_URL CLASS (form-encoded slash command, signed)."""
import logging
import os

from layers.config import Settings
from layers.events import EventSink
from layers.fixes import FixRecorder
from layers.http import allow_methods, ok, respond, user_of
from layers.intake import fetch_image, parse_image_input
from layers.slack import SlackFront, is_slack
from layers.slack_blocks import fix_message
from layers.store import BlobStore

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
SETTINGS = Settings.from_env()
RECORDER = FixRecorder(BlobStore(SETTINGS.s3), EventSink(SETTINGS.kafka, client_id="fix"), SETTINGS)
SLACK = SlackFront.from_settings(SETTINGS, "/fix", f"/fix IMAGE_URL {'|'.join(SETTINGS.labels)}", nargs=(2, 2))


def fix(event) -> dict:
    allow_methods(event, "POST")
    inp = parse_image_input(event.body, event.headers, event.query, SETTINGS.fetch.max_bytes)
    label = RECORDER.validate_label(inp.fields.get("label"))        # before any fetch: a bad class costs nothing
    data = inp.data if inp.data is not None else fetch_image(inp.url, SETTINGS.fetch)
    receipt = RECORDER.record(data, label, user_of(event, inp.fields))
    return ok(receipt.to_json(), status=200 if receipt.duplicate else 201)


def slash_fix(cmd):
    url, label = cmd.args
    label = RECORDER.validate_label(label)
    return fix_message(RECORDER.record(fetch_image(url, SETTINGS.fetch), label, cmd.user_id, source="slack"))


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_fix)
    return respond(lambda: fix(event))
