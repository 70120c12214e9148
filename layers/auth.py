"""Who is calling: bearer tokens for the JSON API, and the namespaced principals that votes are recorded under.

Example:
    tokens = ApiTokens.parse(settings.auth.api_tokens)         # "client sha256(token) [scope,scope]" lines
    client = tokens.authenticate(event.headers.get("Authorization"))   # Client("ci", {"admin"}) or Unauthorized
    principal = api_principal(client, user="alice")            # "api:ci:alice"
    slack_principal("T01", "U42")                              # "slack:T01:U42"
    vote_id("api:ci:alice", request_key)                       # the vote's idempotency key

IMPORTANT:
  * Only sha256 hashes of tokens are configured (secret `api-tokens`); a token is never stored or logged.
  * Principals are namespaced by how they authenticated: an API client can name a sub-user, but its votes are
    always `api:<client>:<user>`, never `slack:…`. Only a verified Slack signature yields `slack:<team>:<user>`.
  * A vote id derives from the principal and the request's idempotency key, never from the content: a retried
    request is one vote, and a user may vote A, then B, then A again (three votes; the latest counts).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field

from layers import logs
from layers.errors import BadInput, Forbidden, Unauthorized

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")        # client and user names inside principals
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")             # printable ASCII, no spaces


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Client:
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"the API client {self.name!r} lacks the {scope!r} scope")


class ApiTokens:
    def __init__(self, by_hash: dict[str, Client]) -> None:
        self._by_hash = by_hash

    @classmethod
    def parse(cls, spec: str) -> "ApiTokens":
        """Lines (or ';'-separated entries) of "client sha256hex [scope,scope]"; '#' starts a comment."""
        by_hash: dict[str, Client] = {}
        for raw in spec.replace(";", "\n").splitlines():
            parts = raw.split("#", 1)[0].split()
            if not parts:
                continue
            if len(parts) not in (2, 3) or not NAME.match(parts[0]) or not re.fullmatch(r"[0-9a-f]{64}", parts[1]):
                raise ValueError(f"api-tokens: bad entry {parts[0]!r}: expected 'client sha256hex [scope,scope]'")
            scopes = frozenset(s for s in (parts[2].split(",") if len(parts) == 3 else []) if s)
            by_hash[parts[1]] = Client(parts[0], scopes)
        return cls(by_hash)

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, authorization: str | None) -> Client:
        """The client a `Authorization: Bearer <token>` header names. Unauthorized otherwise."""
        if not self._by_hash:
            raise Unauthorized("this endpoint needs a bearer token, and none is configured (secret api-tokens)")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send 'Authorization: Bearer <token>'")
        presented = token_hash(token.strip())
        for known, client in self._by_hash.items():
            if hmac.compare_digest(presented, known):
                logs.bind(principal=f"api:{client.name}")
                return client
        raise Unauthorized("the bearer token is not valid")

    def identify(self, authorization: str | None) -> Client | None:
        """Like authenticate, but None instead of Unauthorized (for endpoints open to anyone)."""
        try:
            return self.authenticate(authorization)
        except Unauthorized:
            return None


def api_principal(client: Client, user: object = None) -> str:
    if user is None or user == "":
        return f"api:{client.name}"
    if not isinstance(user, str) or not NAME.match(user):
        raise BadInput("user must be 1-64 characters of letters, digits and . _ @ - (starting with a letter or digit)")
    logs.bind(principal=f"api:{client.name}:{user}")
    return f"api:{client.name}:{user}"


def slack_principal(team_id: str, user_id: str) -> str:
    if not team_id or not user_id:
        raise BadInput("a Slack request without team_id and user_id cannot vote")
    logs.bind(principal=f"slack:{team_id}:{user_id}")
    return f"slack:{team_id}:{user_id}"


def request_key(idempotency_key: str | None) -> str:
    """The API's idempotency key: the header's value, or a fresh one (then every request is a new vote)."""
    if idempotency_key is None or idempotency_key == "":
        return "fresh:" + uuid.uuid4().hex
    if not IDEMPOTENCY_KEY.match(idempotency_key):
        raise BadInput("Idempotency-Key must be 1-255 printable ASCII characters without spaces")
    return "key:" + idempotency_key


def vote_id(principal: str, key: str) -> str:
    return hashlib.sha256(f"{principal}\n{key}".encode("utf-8")).hexdigest()[:32]
