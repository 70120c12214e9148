"""predict-rendezvous: every version in the rendezvous set scores the image in parallel, within a deadline; a
policy picks the answer. Needs Authorization: Bearer <token>.

    POST /function/predict-rendezvous    image bytes, or JSON {image_url | image_b64, policy?, preferred?, deadline_ms?}
    GET  /function/predict-rendezvous?url=...&policy=fastest&deadline_ms=500
    -> {"chosen": {...}, "policy", "average", "average_label", "answers": [{version, label, confidence,
        latency_ms, late}], ...}; the whole record also goes to `predictions` (off the hot path)
    Slack: /predict-rendezvous IMAGE_URL, in two phases: the best answer by SLACK_FIRST_ANSWER_S (2.3 s) inline,
    then, if versions were still scoring, the final answer replaces it through response_url (SLACK_FINAL_ANSWER_S).
Policies: best-confidence (default), fastest, preferred (with `preferred`: a version in the set); the default
comes from the control document (`/models policy ...`), else RENDEZVOUS_POLICY.
"""
import logging
import os

from layers import metrics
from layers.edge.auth import ApiTokens
from layers.config import Settings
from layers.db import Database
from layers.errors import BadInput
from layers.events import EventSink
from layers.slack.replay_guard import ReplayGuard
from layers.edge.http import allow_methods, ok, request_id, respond, up_or_down
from layers.edge.intake import fetch_image, parse_image_input
from layers.registry import Registry
from layers.serving.rendezvous import Rendezvous
from layers.serving.runtime import ModelRuntime
from layers.slack import SlackFront, is_slack
from layers.slack.blocks import rendezvous_message
from layers.store import BlobStore

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
SETTINGS = Settings.from_env()
TOKENS = ApiTokens.parse(SETTINGS.auth.api_tokens)
RUNTIME = ModelRuntime(Registry(BlobStore(SETTINGS.s3)), SETTINGS.model, SETTINGS.serving).start()
RENDEZVOUS = Rendezvous(RUNTIME, SETTINGS.serving, EventSink(SETTINGS.kafka, client_id="predict-rendezvous"),
                        SETTINGS.kafka.topics.predictions)
metrics.watch_runtime(RUNTIME)
metrics.watch_offpath("predict-rendezvous", RENDEZVOUS.offpath)
FIRST_S, FINAL_S = SETTINGS.slack.first_answer_s, SETTINGS.slack.final_answer_s
SLACK = SlackFront.from_settings(SETTINGS, "/predict-rendezvous", "/predict-rendezvous IMAGE_URL", nargs=(1, 1),
                                 replay_guard=ReplayGuard(Database(SETTINGS.db)), inline_budget_s=FIRST_S + 0.3)


def number(fields: dict, name: str) -> int | None:
    value = fields.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a whole number, not {value!r}") from None


def rendezvous(event) -> dict:
    allow_methods(event, "POST", "GET")
    TOKENS.authenticate(event.headers.get("Authorization")).require("predict")
    inp = parse_image_input(event.body, event.headers, event.query, SETTINGS.fetch.max_bytes)
    deadline_ms = number(inp.fields, "deadline_ms")
    data = inp.data if inp.data is not None else fetch_image(inp.url, SETTINGS.fetch)
    return ok(RENDEZVOUS.score(data, request_id(event), policy=inp.fields.get("policy"),
                               preferred=number(inp.fields, "preferred"),
                               deadline_s=deadline_ms / 1000 if deadline_ms is not None else None).to_json())


def slash_rendezvous(cmd, call_id: str):
    url = cmd.args[0]
    first, later = RENDEZVOUS.score_in_two(fetch_image(url, SETTINGS.fetch), call_id, FIRST_S, FINAL_S)
    reply = rendezvous_message(first, url, pending=later is not None)
    if later is not None:
        reply.follow_up = lambda: rendezvous_message(later(), url)
    return reply


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, lambda cmd: slash_rendezvous(cmd, request_id(event)))
    if event.path.rstrip("/") == "/status":
        return respond(lambda: up_or_down(bool(RUNTIME.snapshot().versions)))
    return respond(lambda: rendezvous(event))
