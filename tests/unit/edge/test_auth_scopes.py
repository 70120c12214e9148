"""Tokens carry scopes; a client that does not authenticate its own users is one principal, one voter."""
import pytest

from layers.edge.auth import DEFAULT_SCOPES, ApiTokens, api_principal, routing_key, token_hash
from layers.errors import BadInput, Forbidden


def tokens(spec: str) -> ApiTokens:
    return ApiTokens.parse(spec)


def test_scopes_are_explicit_and_a_line_without_them_gets_the_defaults():
    t = tokens(f"bot {token_hash('b')} predict,vote,delegate\nplain {token_hash('p')}")
    assert t.authenticate("Bearer b").scopes == {"predict", "vote", "delegate"}
    assert t.authenticate("Bearer p").scopes == DEFAULT_SCOPES == {"predict", "vote"}
    with pytest.raises(ValueError, match="unknown scopes"):
        tokens(f"x {token_hash('x')} predict,superuser")


def test_without_delegate_a_client_cannot_mint_voters():
    plain = tokens(f"plain {token_hash('p')}").authenticate("Bearer p")
    assert api_principal(plain) == "api:plain"
    for user in ("a", "b"):
        with pytest.raises(Forbidden, match="delegate"):
            api_principal(plain, user)
    assert routing_key(plain, "a") == "api:plain:a"          # stickiness only: never an identity
    with pytest.raises(Forbidden):
        plain.require("admin")


def test_a_delegating_client_names_its_users():
    bot = tokens(f"bot {token_hash('b')} predict,vote,delegate").authenticate("Bearer b")
    assert api_principal(bot, "alice") == "api:bot:alice" != api_principal(bot, "bob")
    with pytest.raises(BadInput):
        api_principal(bot, "no spaces allowed")
