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
from layers.edge.chain import Chain, bearer, methods
from layers.edge.http import ok, request_id, respond, up_or_down, whole_number
from layers.edge.intake import fetch_image, image_of
from layers.slack import is_slack
from layers.slack.blocks import rendezvous_message
from layers.wiring import Wiring

W = Wiring.for_function("predict-rendezvous")
RENDEZVOUS = W.rendezvous()
FIRST_S, FINAL_S = W.settings.slack.first_answer_s, W.settings.slack.final_answer_s
SLACK = W.slack("/predict-rendezvous", "/predict-rendezvous IMAGE_URL", nargs=(1, 1), inline_budget_s=FIRST_S + 0.3)
API = Chain(methods("POST", "GET"), bearer(W.tokens, "predict"))


def rendezvous(req, caller) -> dict:
    image = image_of(req, W.settings.fetch)
    deadline_ms = whole_number(image.fields, "deadline_ms")
    preferred = whole_number(image.fields, "preferred")
    return ok(RENDEZVOUS.score(image.content(), request_id(req), policy=image.fields.get("policy"), preferred=preferred,
                               deadline_s=deadline_ms / 1000 if deadline_ms is not None else None).to_json())


def slash_rendezvous(cmd, call_id: str):
    url = cmd.args[0]
    first, later = RENDEZVOUS.score_in_two(fetch_image(url, W.settings.fetch), call_id, FIRST_S, FINAL_S)
    reply = rendezvous_message(first, url, pending=later is not None)
    if later is not None:
        reply.follow_up = lambda: rendezvous_message(later(), url)
    return reply


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, lambda cmd: slash_rendezvous(cmd, request_id(event)))
    if event.path.rstrip("/") == "/status":
        return respond(lambda: up_or_down(bool(RENDEZVOUS.runtime.snapshot().versions)))
    return API(event, rendezvous)
