"""The dating app's JSON verbs: which methods each answers, and each one's service call and JSON, as
layers.registry.commands does for /models. The handler authenticates and says who is asking.

Example:
    methods_for("match")                                          # ("GET", "POST"); NotFound for a stranger
    body, status = run(app, "signup", "POST", "api:bot:ada", {"name": "Ada"}, image=lambda: jpeg, key="fresh:1")
"""
from __future__ import annotations

from typing import Callable

from layers.errors import NotFound
from layers.matching.app import AfterDark

METHODS = {"signup": ("POST",), "match": ("GET", "POST"), "me": ("GET", "DELETE"), "confirm": ("POST",),
           "delete": ("DELETE", "POST"), "help": ("GET", "POST", "PUT", "PATCH", "DELETE")}
VOTES = ("confirm",)                     # the verbs that are a vote (the client needs the `vote` scope)


def methods_for(verb: str) -> tuple[str, ...]:
    if verb not in METHODS:
        raise NotFound(f"no such afterdark verb {verb!r}: {', '.join(METHODS)}")
    return METHODS[verb]


def run(app: AfterDark, verb: str, method: str, principal: str, fields: dict, image: Callable[[], bytes] | None,
        key: str) -> tuple[dict, int]:
    """(the JSON body, the status) of one verb other than help, already allowed for `method`."""
    if verb == "signup":
        signed = app.signup(principal, image(), fields.get("name"))
        return {"profile": app.profile_json(signed.profile), "ensemble": signed.score.to_json(),
                "replaced_photo": signed.replaced_photo}, 201
    if verb == "match":
        return app.found_json(app.match(principal)), 200
    if verb == "delete" or method == "DELETE":
        return vars(app.delete(principal)), 200
    if verb == "me":
        return app.profile_json(app.me(principal)), 200
    profile, receipt = app.confirm(principal, fields.get("label"), app.me(principal).photo_sha256, key=key)
    return {"profile": app.profile_json(profile), "vote": receipt.to_json()}, 200
