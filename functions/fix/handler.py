"""fix: a vote. JSON {image_url | image_b64, label, user?}, or image bytes with ?label=[&user=].
Needs `Authorization: Bearer <token>`; the vote is recorded as api:<client>[:<user>]. An `Idempotency-Key`
header makes a retried request one vote. Answers 201 once the image is stored and Kafka acknowledged the vote
(200 for a request already recorded), 429 past the rate limit, 503 when S3, Kafka or PostgreSQL is down.
Slack: /fix IMAGE_URL CLASS (form-encoded slash command, signed), recorded as slack:<team>:<user>.
Slack interactivity (the AI Monkey app's request URL): a click on a vote button under an unconfident answer
(action_id vote:<class>, value {"sha", "model"}) is one vote (source button) on that stored image, however
often Slack delivers it; the message is updated with the running tally."""
from layers.edge.auth import api_principal, request_key, slack_principal
from layers.edge.chain import Chain, bearer, methods
from layers.edge.http import ok, user_of
from layers.edge.intake import fetch_image, image_of
from layers.errors import BadInput
from layers.slack import is_slack
from layers.slack.blocks import fix_message, tally_message
from layers.wiring import Wiring

W = Wiring.for_function("fix")
RECORDER = W.recorder()
SLACK = W.slack("/fix", f"/fix IMAGE_URL {'|'.join(W.settings.labels)}", nargs=(2, 2))
API = Chain(methods("POST"), bearer(W.tokens, "vote"))


def fix(req, caller) -> dict:
    image = image_of(req, W.settings.fetch)
    principal = api_principal(caller.client, user_of(req, image.fields))
    key = request_key(req.headers.get("Idempotency-Key"))
    label = RECORDER.admit(principal, image.fields.get("label"), client=api_principal(caller.client))  # before any fetch
    receipt = RECORDER.record(image.content(), label, principal, source="api", key=key)
    return ok(receipt.to_json(), status=200 if receipt.duplicate else 201)


def slash_fix(cmd):
    url, label = cmd.args
    principal = slack_principal(cmd.team_id, cmd.user_id)
    label = RECORDER.admit(principal, label)
    return fix_message(RECORDER.record(fetch_image(url, W.settings.fetch), label, principal, source="slack",
                                       key=cmd.request_key), url)


def vote_click(click, action):
    data = action.data()
    if data.get("model") != W.settings.model or not isinstance(data.get("sha"), str) or len(data["sha"]) != 64:
        raise BadInput("this button is not a vote on this model's images")
    principal = slack_principal(click.team_id, click.user_id)
    label = RECORDER.admit(principal, action.arg)
    receipt = RECORDER.record_stored(data["sha"], label, principal, source="button", key=click.request_key)
    return tally_message(click.message_blocks, RECORDER.tally(receipt), receipt)


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_fix, actions={"vote": vote_click})
    return API(event, fix)
