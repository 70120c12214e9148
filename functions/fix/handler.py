"""fix: a human correction. JSON {image_url | image_b64, label, user}, or image bytes with ?label=&user=.
Answers only once the image is stored and Kafka acknowledged the fix (201), or 503 when either is down."""
import logging
import os

from layers.config import Settings
from layers.events import EventSink
from layers.fixes import FixRecorder
from layers.http import allow_methods, ok, respond, user_of
from layers.intake import fetch_image, parse_image_input
from layers.store import BlobStore

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
SETTINGS = Settings.from_env()
RECORDER = FixRecorder(BlobStore(SETTINGS.s3), EventSink(SETTINGS.kafka, client_id="fix"), SETTINGS)


def fix(event) -> dict:
    allow_methods(event, "POST")
    inp = parse_image_input(event.body, event.headers, event.query, SETTINGS.fetch.max_bytes)
    label = RECORDER.validate_label(inp.fields.get("label"))        # before any fetch: a bad class costs nothing
    data = inp.data if inp.data is not None else fetch_image(inp.url, SETTINGS.fetch)
    receipt = RECORDER.record(data, label, user_of(event, inp.fields))
    return ok(receipt.to_json(), status=200 if receipt.duplicate else 201)


def handle(event, context):
    return respond(lambda: fix(event))
