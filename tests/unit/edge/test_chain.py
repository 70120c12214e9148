"""The edge's normalised request and the JSON API's middleware chain (pure: no services)."""
from __future__ import annotations

import hashlib

from layers.edge.auth import ApiTokens
from layers.edge.budget import RequestBudget
from layers.edge.chain import Caller, Chain, bearer, budget, methods
from layers.edge.http import ok, whole_number
from layers.edge.request import Headers, Request
from layers.errors import BadInput

TOKENS = ApiTokens.parse(f"bot {hashlib.sha256(b's3cret').hexdigest()} predict\n"
                         f"voter {hashlib.sha256(b'v0te').hexdigest()} vote")


def req(method: str = "POST", token: str | None = "s3cret", **headers: str) -> Request:
    hdrs = {**({"authorization": f"Bearer {token}"} if token else {}), **headers}
    return Request.of(method, "/", [("user", "a"), ("user", "b")], hdrs, b"{}")


def who(r: Request, caller: Caller) -> dict:
    return ok({"client": caller.client.name if caller.client else None})


def test_the_request_is_normalised_once():
    r = Request.of("post", "", [("url", "x"), ("url", "y")],
                   [("Content-Type", "Image/JPEG; q=1"), ("X-Twice", "1"), ("x-twice", "2")], None)
    assert (r.method, r.path, r.body, r.content_type) == ("POST", "/", b"", "image/jpeg")
    assert r.query == {"url": "x"}                                   # the first value, as Flask's .get gives it
    assert r.headers.get("CONTENT-TYPE") == "Image/JPEG; q=1" and r.headers["x-twice"] == "1"
    assert "content-type" in r.headers and list(r.headers) == ["Content-Type", "X-Twice"]
    assert Headers({"A": "1"}) == {"A": "1"}                            # a Mapping like any other


def test_a_chain_runs_its_middleware_in_order_and_answers_json_errors():
    api = Chain(methods("POST"), bearer(TOKENS, "predict"))
    assert api(req(), who) == ok({"client": "bot"})
    assert api(req("GET"), who)["statusCode"] == 405                  # the method first, before any token
    assert api(req("GET", token=None), who)["statusCode"] == 405
    assert api(req(token=None), who)["statusCode"] == 401
    assert api(req(token="wrong"), who)["statusCode"] == 401
    assert api(req(token="v0te"), who)["statusCode"] == 403           # a valid token without the scope
    assert api(req(authorization="Basic abc"), who)["statusCode"] == 401      # a malformed header


def test_the_budget_is_per_client_and_needs_one():
    api = Chain(bearer(TOKENS), budget(RequestBudget(per_minute=2, clock=lambda: 0.0)))
    assert [api(req(), who)["statusCode"] for _ in range(3)] == [200, 200, 429]
    assert api(req(token="v0te"), who)["statusCode"] == 200           # another client has its own budget
    assert Chain(budget(RequestBudget(1)))(req(), who)["statusCode"] == 401   # no client: no budget to count


def test_an_endpoint_error_is_json_and_a_bug_is_a_500_without_a_trace():
    def bad(r, c):
        raise BadInput("nope")

    def bug(r, c):
        raise RuntimeError("secret detail")
    assert Chain()(req(), bad) == {"statusCode": 400, "body": {"error": "bad_input", "message": "nope"},
                                   "headers": {"Content-Type": "application/json"}}
    answer = Chain()(req(), bug)
    assert answer["statusCode"] == 500 and "secret" not in str(answer["body"])


def test_whole_numbers_are_checked():
    assert whole_number({"n": "12"}, "n") == 12 and whole_number({"n": ""}, "n") is None
    assert whole_number({}, "n") is None
    try:
        whole_number({"n": "1.5"}, "n")
    except BadInput as err:
        assert "n must be a whole number" in err.message
    else:
        raise AssertionError("1.5 was accepted")
