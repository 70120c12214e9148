"""Who is calling: bearer tokens for the JSON API, and the namespaced principals that votes are recorded under.

Example:
    tokens = ApiTokens.parse(settings.auth.api_tokens)         # "client sha256(token) [scope,scope]" lines
    client = tokens.authenticate(event.headers.get("Authorization"))   # Client("ci", {"vote"}) or Unauthorized
    client.require("vote")                                     # Forbidden (403) without the scope
    api_principal(client)                                      # "api:ci": one client is one voter...
    api_principal(client, user="alice")                        # ..."api:ci:alice" only with the delegate scope
    slack_principal("T01", "U42")                              # "slack:T01:U42"
    vote_id("api:ci:alice", request_key)                       # the vote's idempotency key

Scopes (the third field of a token's line, comma-separated; a line without one gets DEFAULT_SCOPES):
    predict   /predict, /predict-rendezvous, reading /models, the dating app as the client itself
    vote      /fix
    delegate  the client authenticates its own users and may act as any of them (`user`, `?user=`,
              X-User-Id): each becomes a principal of its own, a separate voter with its own rate limit.
              Without it a user claim is refused (403), so one client is one voter, however many names it makes up.
    admin     DataOps edits in /models

IMPORTANT:
  * Only sha256 hashes of tokens are configured (secret `api-tokens`); a token is never stored or logged.
  * Principals are namespaced by how they authenticated: a delegating API client can name a sub-user, but its
    votes are always `api:<client>:<user>`, never `slack:…`. Only a verified Slack signature yields `slack:<team>:<user>`.
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
FRESH = "fresh:"                 # a request key made up for a request without an Idempotency-Key
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")             # printable ASCII, no spaces
SCOPES = ("predict", "vote", "delegate", "admin")
DEFAULT_SCOPES = frozenset({"predict", "vote"})                   # a token line that names no scopes


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
            if len(parts) not in (2, 3) or not NAME.fullmatch(parts[0]) or not re.fullmatch(r"[0-9a-f]{64}", parts[1]):
                raise ValueError(f"api-tokens: bad entry {parts[0]!r}: expected 'client sha256hex [scope,scope]'")
            scopes = frozenset(s for s in parts[2].split(",") if s) if len(parts) == 3 else DEFAULT_SCOPES
            unknown = sorted(scopes - set(SCOPES))
            if unknown:
                raise ValueError(f"api-tokens: client {parts[0]!r} has unknown scopes {unknown}; known: {', '.join(SCOPES)}")
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
    """Who acts: `api:<client>`, or `api:<client>:<user>` when the client may vouch for its users (delegate).
    A user claim from any other client is refused: it would let one caller mint voters."""
    if user is None or user == "":
        return f"api:{client.name}"
    if "delegate" not in client.scopes:
        raise Forbidden(f"the API client {client.name!r} may not act for its users (it lacks the 'delegate' scope); "
                        f"leave out user / X-User-Id, and it acts as api:{client.name}")
    return _sub_principal(client, user)


def routing_key(client: Client, user: object = None) -> str:
    """Whose requests stick to one version in /predict: the user a client names, with or without delegate.
    It only spreads traffic; it is never an identity that votes, owns or is rate limited."""
    return _sub_principal(client, user) if user not in (None, "") else f"api:{client.name}"


def _sub_principal(client: Client, user: object) -> str:
    if not isinstance(user, str) or not NAME.fullmatch(user):
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
        return FRESH + uuid.uuid4().hex
    if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise BadInput("Idempotency-Key must be 1-255 printable ASCII characters without spaces")
    return "key:" + idempotency_key


def vote_id(principal: str, key: str) -> str:
    return hashlib.sha256(f"{principal}\n{key}".encode("utf-8")).hexdigest()[:32]
