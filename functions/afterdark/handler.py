"""afterdark: the Slack After Dark dating app. Sign up with a photo; two live models score it; meet your
opposite. Needs `Authorization: Bearer <token>`; you are api:<client>[:<user>] (user: ?user=, X-User-Id or
the JSON `user`).

    POST   /function/afterdark/signup   image bytes, or JSON {image_url | image_b64, name?}   -> your profile, scores
    GET    /function/afterdark/match    the next match (200; `match` null with `why`: nobody-opposite | nobody-left)
    GET    /function/afterdark/me       your profile, both scores and the versions that scored you
    POST   /function/afterdark/confirm  {"label": "engineer"} your side (also a vote on your photo)
    DELETE /function/afterdark/me       your profile, your matches, your photo (README: what is kept and why)
Slack: /afterdark signup PHOTO_URL [name] | match | me | delete | help, and the buttons (the app's
interactivity URL is this function): side:<class> (confirm your side), next (the next match).
"""
import logging
import os

from layers import metrics
from layers.edge.auth import ApiTokens, api_principal, request_key, slack_principal
from layers.config import Settings
from layers.db import Database
from layers.errors import NotFound
from layers.events import EventSink
from layers.ledger.recorder import VoteRecorder
from layers.ledger.limits import RateLimiter
from layers.slack.replay_guard import ReplayGuard
from layers.edge.http import allow_methods, json_object, ok, respond, user_of
from layers.edge.intake import fetch_image, parse_image_input
from layers.ledger import Ledger
from layers.matching.app import AfterDark
from layers.matching.profiles import Profiles
from layers.matching.rules import explain
from layers.edge.media import MediaLinks
from layers.registry import Registry
from layers.serving.ensemble import Ensemble
from layers.serving.runtime import ModelRuntime
from layers.slack import Reply, SlackFront, is_slack
from layers.slack.blocks import deleted_message, match_message, profile_message, signup_message
from layers.matching.sweeper import PhotoSweeper
from layers.store import BlobStore

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
SETTINGS = Settings.from_env()
STORE = BlobStore(SETTINGS.s3)
DB = Database(SETTINGS.db)
TOKENS = ApiTokens.parse(SETTINGS.auth.api_tokens)
RUNTIME = ModelRuntime(Registry(STORE), SETTINGS.model, SETTINGS.serving).start()
LIMITER = RateLimiter(DB, SETTINGS.auth.votes_per_window, SETTINGS.auth.vote_window_s)
RECORDER = VoteRecorder(STORE, EventSink(SETTINGS.kafka, client_id="afterdark"), Ledger(DB), LIMITER, SETTINGS)
PROFILES = Profiles(DB)
APP = AfterDark(Ensemble(RUNTIME, SETTINGS.serving, os.environ.get("ENSEMBLE_WEIGHTING", "equal")), PROFILES,
                STORE, RECORDER, MediaLinks(SETTINGS.media), SETTINGS.labels, SETTINGS.serving.max_pixels, LIMITER)
SWEEPER = PhotoSweeper(STORE, PROFILES).start()       # photos no profile references, after an hour
metrics.watch_runtime(RUNTIME)
USAGE = "/afterdark signup PHOTO_URL [name] | match | me | delete | help"
SLACK = SlackFront.from_settings(SETTINGS, "/afterdark", USAGE, nargs=(1, 8), response_type="ephemeral",
                                 replay_guard=ReplayGuard(DB))


def profile_json(p, own: bool = True) -> dict:
    """A profile as JSON: someone else's shows its opaque id, never the principal (a Slack user id)."""
    return {**({"principal": p.principal} if own else {}), "id": p.public_id, "name": p.display_name,
            "label": p.label, "score_engineer": round(p.score, 6),
            "confirmed": p.confirmed, "versions": p.versions, "scores": p.scores, "photo_url": APP.photo_url(p)}


def found_json(found) -> dict:
    if found.match is None:
        return {"match": None, "why": found.why_none, "you": profile_json(found.viewer)}
    return {"match": {**profile_json(found.match.profile, own=False), "affinity": found.match.affinity},
            "explanation": explain(found.viewer, found.match), "remaining": found.remaining,
            "you": profile_json(found.viewer)}


def api(event) -> dict:
    client = TOKENS.authenticate(event.headers.get("Authorization"))
    client.require("predict")
    verb = event.path.strip("/") or "help"
    if verb == "signup":
        allow_methods(event, "POST")
        inp = parse_image_input(event.body, event.headers, event.query, SETTINGS.fetch.max_bytes)
        principal = api_principal(client, user_of(event, inp.fields))
        data = inp.data if inp.data is not None else fetch_image(inp.url, SETTINGS.fetch)
        signed = APP.signup(principal, data, inp.fields.get("name") or event.query.get("name"))
        return ok({"profile": profile_json(signed.profile), "ensemble": signed.score.to_json(),
                   "replaced_photo": signed.replaced_photo}, status=201)
    fields = {**event.query, **(json_object(event.body) if event.method == "POST" else {})}
    principal = api_principal(client, user_of(event, fields))
    if verb == "match":
        allow_methods(event, "GET", "POST")
        return ok(found_json(APP.match(principal)))
    if (verb == "me" and event.method == "DELETE") or verb == "delete":
        allow_methods(event, "DELETE", "POST")
        return ok(vars(APP.delete(principal)))
    if verb == "me":
        allow_methods(event, "GET")
        return ok(profile_json(APP.me(principal)))
    if verb == "confirm":
        allow_methods(event, "POST")
        client.require("vote")
        me = APP.me(principal)
        profile, receipt = APP.confirm(principal, fields.get("label"), me.photo_sha256,
                                       key=request_key(event.headers.get("Idempotency-Key")))
        return ok({"profile": profile_json(profile), "vote": receipt.to_json()})
    if verb == "help":
        return ok({"usage": __doc__})
    raise NotFound(f"no such afterdark verb {verb!r}: signup, match, me, confirm, delete, help")


def slash_afterdark(cmd) -> Reply:
    words = cmd.args
    principal = slack_principal(cmd.team_id, cmd.user_id)
    verb = words[0].lower()
    if verb == "signup":
        if len(words) < 2:
            return SLACK.help("signup needs a photo URL")
        signed = APP.signup(principal, fetch_image(words[1], SETTINGS.fetch), " ".join(words[2:]) or None)
        return signup_message(signed, APP.photo_url(signed.profile), SETTINGS.labels)
    if len(words) != 1:
        return SLACK.help()
    if verb == "match":
        return match_reply(principal)
    if verb == "me":
        me = APP.me(principal)
        return profile_message(me, APP.photo_url(me))
    if verb == "delete":
        return deleted_message(APP.delete(principal))
    return SLACK.help()


def match_reply(principal: str) -> Reply:
    found = APP.match(principal)
    photo = APP.photo_url(found.match.profile) if found.match else None
    return match_message(found, photo, explain(found.viewer, found.match) if found.match else "")


def side_click(click, action) -> Reply:
    profile, receipt = APP.confirm(slack_principal(click.team_id, click.user_id), action.arg,
                                   str(action.data().get("sha", "")), key=click.request_key)
    reply = profile_message(profile, APP.photo_url(profile))
    reply.replace_original = True
    reply.blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                         f"Thanks! Your side is *{profile.label}*, and your photo is a vote (`{receipt.vote_id[:12]}`)."}]})
    return reply


def next_click(click, action) -> Reply:
    return match_reply(slack_principal(click.team_id, click.user_id))


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_afterdark, actions={"side": side_click, "next": next_click})
    return respond(lambda: api(event))
