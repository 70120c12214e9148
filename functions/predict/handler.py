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
from layers.edge.auth import routing_key
from layers.edge.chain import Chain, bearer, budget, methods
from layers.edge.http import ok, request_id, respond, up_or_down, user_of
from layers.edge.intake import fetch_image, image_of
from layers.slack import is_slack
from layers.slack.blocks import predict_message
from layers.wiring import Wiring

W = Wiring.for_function("predict")
PREDICTOR = W.predictor()
SLACK = W.slack("/predict", "/predict IMAGE_URL", nargs=(1, 1))
API = Chain(methods("POST", "GET"), bearer(W.tokens, "predict"), budget(W.budget))


def predict(req, caller) -> dict:
    image = image_of(req, W.settings.fetch)
    principal = routing_key(caller.client, user_of(req, image.fields))
    return ok(PREDICTOR.predict(image.content(), user=principal, request_id=request_id(req)).to_json())


def status(req) -> dict:
    if W.tokens.identify(req.headers.get("Authorization")) is None:
        return up_or_down(PREDICTOR.up())
    return ok({**PREDICTOR.status(), "review": W.review.stats()})


def slash_predict(cmd, call_id: str):
    W.budget.hit(cmd.principal)
    url = cmd.args[0]
    p = PREDICTOR.predict(fetch_image(url, W.settings.fetch), user=cmd.principal, request_id=call_id)
    return predict_message(p, url, W.settings.labels)


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, lambda cmd: slash_predict(cmd, request_id(event)))
    if event.path.rstrip("/") == "/status":
        return respond(lambda: status(event))
    return API(event, predict)
