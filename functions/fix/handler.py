"""fix: a vote. JSON {image_url | image_b64, label, user?}, or image bytes with ?label=[&user=].
Needs `Authorization: Bearer <token>`; the vote is recorded as api:<client>[:<user>]. An `Idempotency-Key`
header makes a retried request one vote. Answers 201 once the image is stored and Kafka acknowledged the vote
(200 for a request already recorded), 429 past the rate limit, 503 when S3, Kafka or PostgreSQL is down.
Slack: /fix IMAGE_URL CLASS (form-encoded slash command, signed), recorded as slack:<team>:<user>.
A click on a vote button under an unconfident answer (action_id vote:<class>, value {"sha", "model"}) is one
vote (source button) on that stored image, however often Slack delivers it; the message is updated with the
running tally. The AI Monkey app's interactivity URL is the ai-monkey function now, which takes the same
clicks; this one still does, for an app installed with the older manifest."""
from layers.edge.auth import api_principal, request_key, slack_principal
from layers.edge.chain import Chain, bearer, methods
from layers.edge.http import ok, user_of
from layers.edge.intake import fetch_image, image_of
from layers.slack import is_slack
from layers.slack.blocks import fix_message
from layers.slack.votes import button_vote
from layers.wiring import Wiring

W = Wiring.for_function("fix")
RECORDER = W.recorder()
SLACK = W.slack("/fix", f"/fix IMAGE_URL {'|'.join(W.settings.labels)}", nargs=(2, 3))     # "non engineer": 2 words
API = Chain(methods("POST"), bearer(W.tokens, "vote"))


def fix(req, caller) -> dict:
    image = image_of(req, W.settings.fetch)
    principal = api_principal(caller.client, user_of(req, image.fields))
    key = request_key(req.headers.get("Idempotency-Key"))
    label = RECORDER.admit(principal, image.fields.get("label"), client=api_principal(caller.client))  # before any fetch
    receipt = RECORDER.record(image.content(), label, principal, source="api", key=key)
    return ok(receipt.to_json(), status=200 if receipt.duplicate else 201)


def slash_fix(cmd):
    url, label = cmd.args[0], " ".join(cmd.args[1:])
    principal = slack_principal(cmd.team_id, cmd.user_id)
    label = RECORDER.admit(principal, label)
    return fix_message(RECORDER.record(fetch_image(url, W.settings.fetch), label, principal, source="slack",
                                       key=cmd.request_key), url)


def vote_click(click, action):
    return button_vote(RECORDER, W.settings.model, click, action)


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_fix, actions={"vote": vote_click})
    return API(event, fix)
