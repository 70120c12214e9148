"""The JSON side of every handler: one place maps the exception tree to HTTP answers.

Example (a whole handler):
    def handle(event, context):
        return respond(lambda: ok(service.do(parse(event))))

Every error is `{"error": code, "message": human text, ...details}` with the status from layers.errors.
Anything unexpected is a 500 with a request id, and its traceback goes to the log, never to the caller.
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Callable

from layers.errors import AfterDarkError, BadInput, MethodNotAllowed

log = logging.getLogger("afterdark.http")
JSON = {"Content-Type": "application/json"}


def ok(body: dict, status: int = 200) -> dict:
    return {"statusCode": status, "body": body, "headers": dict(JSON)}


def up_or_down(up: bool) -> dict:
    """What an open health endpoint tells anyone: up (200) or down (503), nothing more."""
    return {"statusCode": 200 if up else 503, "body": {"status": "up" if up else "down"}, "headers": dict(JSON)}


def error(exc: AfterDarkError) -> dict:
    return {"statusCode": exc.status, "body": exc.to_dict(), "headers": {**JSON, **exc.headers}}


def respond(work: Callable[[], dict]) -> dict:
    try:
        return work()
    except AfterDarkError as exc:
        return error(exc)
    except Exception:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error (ref %s)", ref)
        return {"statusCode": 500, "headers": dict(JSON),
                "body": {"error": "internal", "message": f"something went wrong on our side (ref {ref})"}}


def request_id(event) -> str:
    return event.headers.get("X-Call-Id") or uuid.uuid4().hex


def allow_methods(event, *methods: str) -> None:
    if event.method not in methods:
        raise MethodNotAllowed(f"{event.method} is not allowed here; use {' or '.join(methods)}", allowed=list(methods))


def user_of(event, fields: dict) -> str | None:
    user = fields.get("user") or event.query.get("user") or event.headers.get("X-User-Id")
    return str(user) if user else None


def json_object(body: bytes | None) -> dict:
    """A request's JSON object body ({} when empty); BadInput for anything else."""
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(f"the body is not valid JSON: {err}") from err
    if not isinstance(doc, dict):
        raise BadInput("the JSON body must be an object")
    return doc


def whole_number(fields: dict, name: str) -> int | None:
    """A request field that must be a whole number (None when absent or empty); BadInput otherwise."""
    value = fields.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a whole number, not {value!r}") from None
