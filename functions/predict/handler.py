"""predict: an image (bytes, JSON image_url/image_b64, or a URL) -> label, confidence and the version that answered.

    POST /function/predict            the prediction (JSON); needs Authorization: Bearer <token>
    GET  /function/predict?url=...    the same, for a URL
    GET  /function/predict/status     {"status": "up"|"down"} for anyone; with a token, the runtime: ready
                                      versions, route, failures, off-path counters
    Slack: /predict IMAGE_URL         (form-encoded slash command, signed); an unconfident answer carries vote
                                      buttons (the fix function records the clicks)
With SLACK_REVIEW_CHANNEL and a bot token (secret slack-bot-token), every unconfident answer is also posted to
that channel with the same buttons, off the hot path.
"""
import logging
import os

from layers import metrics
from layers.edge.auth import ApiTokens, routing_key
from layers.config import Settings
from layers.db import Database
from layers.events import EventSink
from layers.slack.replay_guard import ReplayGuard
from layers.edge.budget import RequestBudget
from layers.edge.http import allow_methods, ok, request_id, respond, up_or_down, user_of
from layers.edge.intake import fetch_image, parse_image_input
from layers.edge.media import MediaLinks
from layers.serving.predictor import Predictor
from layers.registry import Registry
from layers.serving.runtime import ModelRuntime
from layers.slack import SlackFront, is_slack
from layers.slack.blocks import predict_message
from layers.slack.review import ReviewChannel
from layers.store import BlobStore

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
SETTINGS = Settings.from_env()
STORE = BlobStore(SETTINGS.s3)
TOKENS = ApiTokens.parse(SETTINGS.auth.api_tokens)
BUDGET = RequestBudget(SETTINGS.serving.predict_per_minute)     # per client, per replica
RUNTIME = ModelRuntime(Registry(STORE), SETTINGS.model, SETTINGS.serving).start()
REVIEW = ReviewChannel(SETTINGS.slack, MediaLinks(SETTINGS.media), SETTINGS.labels)
PREDICTOR = Predictor(RUNTIME, STORE, EventSink(SETTINGS.kafka, client_id="predict"), SETTINGS,
                      on_unconfident=REVIEW.submit if REVIEW.enabled else None)
metrics.watch_runtime(RUNTIME)
metrics.watch_offpath("predict", PREDICTOR.offpath, *([REVIEW.queue] if REVIEW.queue else []))
metrics.watch_cache(PREDICTOR.cache)
SLACK = SlackFront.from_settings(SETTINGS, "/predict", "/predict IMAGE_URL", nargs=(1, 1),
                                 replay_guard=ReplayGuard(Database(SETTINGS.db)))


def status(event) -> dict:
    if TOKENS.identify(event.headers.get("Authorization")) is None:
        return up_or_down(bool(RUNTIME.snapshot().versions))
    return ok({**RUNTIME.status(), "offpath": PREDICTOR.offpath.stats(), "cache": PREDICTOR.cache.stats(),
               "review": {"channel": REVIEW.channel or None, "posted": REVIEW.posted, "failed": REVIEW.failed,
                          "queue": REVIEW.queue.stats() if REVIEW.queue else None}})


def predict(event) -> dict:
    allow_methods(event, "POST", "GET")
    client = TOKENS.authenticate(event.headers.get("Authorization"))
    client.require("predict")
    BUDGET.hit(f"api:{client.name}")
    inp = parse_image_input(event.body, event.headers, event.query, SETTINGS.fetch.max_bytes)
    principal = routing_key(client, user_of(event, inp.fields))
    data = inp.data if inp.data is not None else fetch_image(inp.url, SETTINGS.fetch)
    return ok(PREDICTOR.predict(data, user=principal, request_id=request_id(event)).to_json())


def slash_predict(cmd, call_id: str):
    url = cmd.args[0]
    BUDGET.hit(cmd.principal)
    p = PREDICTOR.predict(fetch_image(url, SETTINGS.fetch), user=cmd.principal, request_id=call_id)
    return predict_message(p, url, SETTINGS.labels)


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, lambda cmd: slash_predict(cmd, request_id(event)))
    if event.path.rstrip("/") == "/status":
        return respond(lambda: status(event))
    return respond(lambda: predict(event))
