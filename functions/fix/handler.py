"""fix: a vote. JSON {image_url | image_b64, label, user?}, or image bytes with ?label=[&user=].
Needs `Authorization: Bearer <token>`; the vote is recorded as api:<client>[:<user>]. An `Idempotency-Key`
header makes a retried request one vote. Answers 201 once the image is stored and Kafka acknowledged the vote
(200 for a request already recorded), 429 past the rate limit, 503 when S3, Kafka or PostgreSQL is down.
Slack: /fix IMAGE_URL CLASS (form-encoded slash command, signed), recorded as slack:<team>:<user>.
Slack interactivity (the AI Monkey app's request URL): a click on a vote button under an unconfident answer
(action_id vote:<class>, value {"sha", "model"}) is one vote (source button) on that stored image, however
often Slack delivers it; the message is updated with the running tally."""
import logging
import os

from layers.edge.auth import ApiTokens, api_principal, request_key, slack_principal
from layers.config import Settings
from layers.db import Database
from layers.errors import BadInput
from layers.events import EventSink
from layers.ledger.recorder import VoteRecorder
from layers.ledger.limits import RateLimiter
from layers.slack.replay_guard import ReplayGuard
from layers.edge.http import allow_methods, ok, respond, user_of
from layers.edge.intake import fetch_image, parse_image_input
from layers.ledger import Ledger
from layers.slack import SlackFront, is_slack
from layers.slack.blocks import fix_message, tally_message
from layers.store import BlobStore

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
SETTINGS = Settings.from_env()
DB = Database(SETTINGS.db)
TOKENS = ApiTokens.parse(SETTINGS.auth.api_tokens)
RECORDER = VoteRecorder(BlobStore(SETTINGS.s3), EventSink(SETTINGS.kafka, client_id="fix"), Ledger(DB),
                        RateLimiter(DB, SETTINGS.auth.votes_per_window, SETTINGS.auth.vote_window_s), SETTINGS,
                        client_limiter=RateLimiter(DB, SETTINGS.auth.client_votes_per_window, SETTINGS.auth.vote_window_s))
SLACK = SlackFront.from_settings(SETTINGS, "/fix", f"/fix IMAGE_URL {'|'.join(SETTINGS.labels)}", nargs=(2, 2),
                                 replay_guard=ReplayGuard(DB))


def fix(event) -> dict:
    allow_methods(event, "POST")
    client = TOKENS.authenticate(event.headers.get("Authorization"))
    client.require("vote")
    inp = parse_image_input(event.body, event.headers, event.query, SETTINGS.fetch.max_bytes)
    principal = api_principal(client, user_of(event, inp.fields))
    key = request_key(event.headers.get("Idempotency-Key"))
    label = RECORDER.admit(principal, inp.fields.get("label"), client=api_principal(client))   # before any fetch
    data = inp.data if inp.data is not None else fetch_image(inp.url, SETTINGS.fetch)
    receipt = RECORDER.record(data, label, principal, source="api", key=key)
    return ok(receipt.to_json(), status=200 if receipt.duplicate else 201)


def slash_fix(cmd):
    url, label = cmd.args
    principal = slack_principal(cmd.team_id, cmd.user_id)
    label = RECORDER.admit(principal, label)
    return fix_message(RECORDER.record(fetch_image(url, SETTINGS.fetch), label, principal, source="slack",
                                       key=cmd.request_key), url)


def vote_click(click, action):
    data = action.data()
    if data.get("model") != SETTINGS.model or not isinstance(data.get("sha"), str) or len(data["sha"]) != 64:
        raise BadInput("this button is not a vote on this model's images")
    principal = slack_principal(click.team_id, click.user_id)
    label = RECORDER.admit(principal, action.arg)
    receipt = RECORDER.record_stored(data["sha"], label, principal, source="button", key=click.request_key)
    return tally_message(click.message_blocks, RECORDER.tally(receipt), receipt)


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_fix, actions={"vote": vote_click})
    return respond(lambda: fix(event))
