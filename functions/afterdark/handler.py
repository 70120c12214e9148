"""afterdark: the Slack After Dark dating app. Sign up with a photo; two live models score it; meet your
opposite. Needs `Authorization: Bearer <token>`; you are api:<client>[:<user>] (user: ?user=, X-User-Id or
the JSON `user`).

    POST   /function/afterdark/signup   image bytes, or JSON {image_url | image_b64, name?}   -> your profile, scores
    GET    /function/afterdark/match    the next match (200; `match` null with `why`: nobody-opposite | nobody-left)
    GET    /function/afterdark/me       your profile, both scores and the versions that scored you
    POST   /function/afterdark/confirm  {"label": "engineer"} your side (also a vote on your photo)
    DELETE /function/afterdark/me       your profile, your matches, your photo (README: what is kept and why)
Slack: /afterdark signup [PHOTO_URL] [name] | match | me | delete | help (without a URL: your Slack profile
photo, users.profile.get), and the buttons (the app's
interactivity URL is this function): side:<class> (confirm your side), next (the next match).
"""
from layers.edge.auth import api_principal, request_key, slack_principal
from layers.edge.chain import Chain, bearer
from layers.edge.http import allow_methods, json_object, ok, user_of
from layers.edge.intake import fetch_image, image_of
from layers.matching import verbs
from layers.matching.rules import explain
from layers.slack import Reply, is_slack
from layers.slack.files import profile_photo
from layers.slack.blocks import deleted_message, match_message, profile_message, side_thanks, signup_message
from layers.wiring import Wiring

W = Wiring.for_function("afterdark")
APP = W.dating_app()
USAGE = "/afterdark signup [PHOTO_URL] [name] | match | me | delete | help"
SLACK = W.slack("/afterdark", USAGE, nargs=(1, 8), response_type="ephemeral")
API = Chain(bearer(W.tokens, "predict"))


def api(req, caller) -> dict:
    verb = req.path.strip("/") or "help"
    allow_methods(req, *verbs.methods_for(verb))
    if verb == "help":
        return ok({"usage": __doc__})
    image = image_of(req, W.settings.fetch) if verb == "signup" else None
    fields = image.fields if image else {**req.query, **(json_object(req.body) if req.method == "POST" else {})}
    key = ""
    if verb in verbs.VOTES:                                        # your side is a vote
        caller.client.require("vote")
        key = request_key(req.headers.get("Idempotency-Key"))
    body, status = verbs.run(APP, verb, req.method, api_principal(caller.client, user_of(req, fields)), fields,
                             image.content if image else None, key)
    return ok(body, status=status)


def slash_afterdark(cmd) -> Reply:
    words, principal = cmd.args, slack_principal(cmd.team_id, cmd.user_id)
    verb = words[0].lower()
    if verb == "signup":                       # a photo URL, or without one your Slack profile photo
        url = words[1] if len(words) >= 2 and words[1].startswith(("http://", "https://")) else None
        photo = fetch_image(url, W.settings.fetch) if url else profile_photo(SLACK.web, cmd.user_id, W.settings)
        signed = APP.signup(principal, photo, " ".join(words[2 if url else 1:]) or None)
        return signup_message(signed, APP.photo_url(signed.profile), W.settings.labels)
    if verb not in ("match", "me", "delete") or len(words) != 1:
        return SLACK.help()
    if verb == "match":
        return match_reply(principal)
    if verb == "me":
        me = APP.me(principal)
        return profile_message(me, APP.photo_url(me))
    return deleted_message(APP.delete(principal))


def match_reply(principal: str) -> Reply:
    found = APP.match(principal)
    photo = APP.photo_url(found.match.profile) if found.match else None
    return match_message(found, photo, explain(found.viewer, found.match) if found.match else "")


def side_click(click, action) -> Reply:
    profile, receipt = APP.confirm(slack_principal(click.team_id, click.user_id), action.arg,
                                   str(action.data().get("sha", "")), key=click.request_key)
    return side_thanks(profile_message(profile, APP.photo_url(profile)), profile, receipt)


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_afterdark, actions={
            "side": side_click, "next": lambda click, action: match_reply(slack_principal(click.team_id, click.user_id))})
    return API(event, api)
