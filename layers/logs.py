"""Logs as JSON lines: one object per record, with the request it belongs to.

Example:
    logs.configure("predict")                  # the template does this once, before the handler is imported
    with logs.request(call_id):                # the template, around each request
        logs.bind(principal="api:ci:alice", version=3)     # whoever learns these (auth, the predictor)
        log.info("answered")                  # {"ts", "level", "logger", "msg", "function", "request_id",
                                               #  "principal", "version", ...}

IMPORTANT: never a token, a signature or image bytes. Nothing here logs a header or a body, and `scrub`
blanks anything shaped like a bearer token or a Slack signature that a message might carry anyway.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from contextlib import contextmanager
from typing import Iterator

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("afterdark_log_context", default={})
SECRET = re.compile(r"(Bearer\s+)[^\s\"']+|(v0=)[0-9a-f]{16,}|(xox[abpr]-)[\w-]+", re.IGNORECASE)


def scrub(text: str) -> str:
    return SECRET.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, function: str) -> None:
        super().__init__()
        self.function = function

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name, "msg": scrub(record.getMessage()),
                 "function": self.function, **_context.get()}
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure(function: str, level: str = "INFO") -> None:
    """Every record of this process as a JSON line on stderr (the watchdog collects it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(function))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@contextmanager
def request(request_id: str) -> Iterator[None]:
    token = _context.set({"request_id": request_id})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields) -> None:
    """Add fields (principal, version, ...) to the current request's records."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
