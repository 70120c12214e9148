"""Malformed headers, query strings and bodies, sent to every function through the gateway: never a 5xx,
and every refusal is JSON. Deterministic cases (each a shape that once gave a 500, or its neighbours), so a
failure names its request; the schemathesis run (test_openapi.py) covers the documented shapes."""
from __future__ import annotations

import os
import random

import pytest

from tests.conftest import http

VIEWER = os.environ.get("API_TOKEN_VIEWER", "")     # predict and vote scopes: no admin, no delegate
PATHS = ["predict", "fix", "predict-rendezvous", "models", "models/history", "models/voters", "afterdark/signup",
         "afterdark/match", "afterdark/me", "media/media/abc.png", "healthz"]
FORM = "application/x-www-form-urlencoded"
SLACK_FORM = b"command=%2Fpredict&text=https%3A%2F%2Fexample.com%2Fa.jpg&team_id=T1&user_id=U1&response_url=x"

# (name, method, query, headers, body)
CASES = [
    ("slack timestamp not a number", "POST", "", {"Content-Type": FORM, "X-Slack-Request-Timestamp": "abc",
                                                  "X-Slack-Signature": "v0=00"}, SLACK_FORM),
    ("slack timestamp huge", "POST", "", {"Content-Type": FORM, "X-Slack-Request-Timestamp": "9" * 30,
                                          "X-Slack-Signature": "v0=00"}, SLACK_FORM),
    ("slack signature alone", "POST", "", {"Content-Type": FORM, "X-Slack-Signature": "zz"}, SLACK_FORM),
    ("form without slack headers", "POST", "", {"Content-Type": FORM}, b"text=%ff%fe&payload=%7B"),
    ("interactive payload not JSON", "POST", "", {"Content-Type": FORM, "X-Slack-Request-Timestamp": "1",
                                                  "X-Slack-Signature": "v0=00"}, b"payload=%7Bnot-json"),
    ("authorization without a token", "GET", "", {"Authorization": "Bearer"}, None),
    ("authorization of another scheme", "GET", "", {"Authorization": "Basic Zm9vOmJhcg=="}, None),
    ("authorization huge", "GET", "", {"Authorization": "Bearer " + "a" * 6000}, None),
    ("media exp and sig not ascii", "GET", "?exp=%C2%B2&sig=%C3%A9", {}, None),
    ("media exp negative", "GET", "?exp=-1&sig=00", {}, None),
    ("query of undecodable bytes", "GET", "?user=%ff%fe&label=%E2%80%AE&url=%00&version=abc&cursor=%ff", {}, None),
    ("query repeated and empty", "POST", "?label=&label=engineer&user=&version=&version=1", {}, b""),
    ("json cut short", "POST", "", {"Content-Type": "application/json"}, b'{"image_url": '),
    ("json of the wrong types", "POST", "", {"Content-Type": "application/json"},
     b'{"image_url": 5, "image_b64": ["x"], "name": 5, "label": {"a": 1}, "user": 7, "version": "x"}'),
    ("json not an object", "POST", "", {"Content-Type": "application/json"}, b'[1, 2, "three"]'),
    ("json null", "POST", "", {"Content-Type": "application/json"}, b"null"),
    ("base64 that is not", "POST", "", {"Content-Type": "application/json"}, b'{"image_b64": "@@@not base64@@@"}'),
    ("image bytes that are not", "POST", "?label=engineer", {"Content-Type": "image/jpeg"}, b"\xff\xd8\xff\xe0" + b"\x00" * 64),
    ("random bytes", "POST", "", {"Content-Type": "application/octet-stream"}, random.Random(7).randbytes(512)),
    ("content type nonsense", "POST", "", {"Content-Type": "multipart/form-data; boundary="}, b"--\r\n"),
    ("idempotency key too long", "POST", "?label=engineer", {"Idempotency-Key": "k" * 400, "Content-Type": "image/png"}, b"x"),
    ("idempotency key of spaces", "POST", "?label=engineer", {"Idempotency-Key": "   ", "Content-Type": "image/png"}, b"x"),
    ("user header of a path", "POST", "", {"X-User-Id": "../../etc/passwd", "Content-Type": "image/png"}, b"x"),
    ("delete with a body", "DELETE", "", {"Content-Type": "application/json"}, b'{"version": "all"}'),
]


@pytest.mark.parametrize("name, method, query, headers, body", CASES, ids=[c[0] for c in CASES])
def test_no_malformed_request_gets_a_5xx(name, method, query, headers, body, served, gateway):
    problems = []
    for path in PATHS:
        send = dict(headers)
        if "Authorization" not in send and "X-Slack-Signature" not in send and send.get("Content-Type") != FORM:
            send["Authorization"] = f"Bearer {VIEWER}"
        status, _, reply = http(method, f"{gateway}/function/{path}{query}", body, send, auth=False, timeout=30)
        if status >= 500 or (status >= 400 and not isinstance(reply, dict)):
            problems.append(f"{method} /function/{path}{query} -> {status} {str(reply)[:200]}")
    assert problems == []
