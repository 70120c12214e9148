"""Malformed values that once gave a 500 (or passed as a distinct value) are refused as 4xx by the code that
reads them: the fuzz test through the gateway (tests/functions/test_fuzz.py) covers every function."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from layers.edge.auth import ApiTokens, api_principal, request_key, token_hash
from layers.config import MediaSettings, SlackSettings
from layers.errors import BadInput, Forbidden
from layers.matching.app import AfterDark
from layers.edge.media import MediaLinks
from layers.slack.dispatch import SlackFront

LINKS = MediaLinks(MediaSettings(signing_key="k" * 32, public_url="https://gw.example", ttl_s=60))


@pytest.mark.parametrize("exp, sig", [("²", "ab" * 32), ("1" * 40, "ab" * 32), ("1060", "é"), ("1060", "\udcff")])
def test_a_media_link_with_a_strange_exp_or_sig_is_forbidden(exp, sig):
    with pytest.raises(Forbidden):
        LINKS.verify("media/abc.png", exp, sig, now=1000)


@pytest.mark.parametrize("stamp", ["abc", "１２３", "12 ", "-5", "9" * 40])
def test_a_malformed_slack_timestamp_is_a_401(stamp):
    front = SlackFront(SlackSettings(signing_secret="s"), "/predict", "usage", (0, 1))
    event = SimpleNamespace(body=b"text=x", headers={"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=ab"})
    reply = front.verify.require_signature(event)
    assert reply is not None and reply["statusCode"] == 401


@pytest.mark.parametrize("name", [5, ["a"], {"a": 1}, True])
def test_a_display_name_that_is_not_a_string_is_bad_input(name):
    app = AfterDark(None, None, None, None, LINKS, ("engineer", "non_engineer"), 10**6)
    with pytest.raises(BadInput, match="name"):
        app.signup("api:t", b"", name)


def test_a_trailing_newline_is_not_a_different_user_or_key():
    client = ApiTokens.parse(f"bot {token_hash('b')} predict,vote,delegate").authenticate("Bearer b")
    assert api_principal(client, "ada") == "api:bot:ada"
    for user in ("ada\n", "ada\r", " ada"):
        with pytest.raises(BadInput):
            api_principal(client, user)
    assert request_key("k1") == "key:k1"
    for key in ("k1\n", "k1\r\n"):
        with pytest.raises(BadInput):
            request_key(key)
