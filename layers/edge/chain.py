"""The JSON API's middleware: each function declares the chain its endpoints need, and the endpoint gets the
caller that the chain established. Slack requests take the Slack front's own chain (layers.slack.verify:
the signature, then the replay guard; its admin check is `SlackFront.is_admin`).

Example (a handler):
    API = Chain(methods("POST", "GET"), bearer(W.tokens, "predict"), budget(W.budget))
    def handle(event, context):
        return API(event, lambda req, caller: ok(service(req, caller.client)))

A middleware is a function of (Request, Caller) that raises an AfterDarkError to stop the request (its answer
is the JSON error, with its status), or returns the Caller it passes on. The chain answers every error as
layers.edge.http.respond does: no middleware and no endpoint ever turns bad input into a 5xx.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from layers.edge.auth import ApiTokens, Client
from layers.edge.budget import RequestBudget
from layers.edge.http import allow_methods, respond
from layers.edge.request import Request
from layers.errors import Unauthorized


@dataclass(frozen=True)
class Caller:
    client: Client | None = None        # who the bearer token says is calling (None: no token was required)


Middleware = Callable[[Request, Caller], Caller]
Endpoint = Callable[[Request, Caller], dict]


class Chain:
    def __init__(self, *steps: Middleware) -> None:
        self.steps = steps

    def __call__(self, req: Request, endpoint: Endpoint) -> dict:
        def run() -> dict:
            caller = Caller()
            for step in self.steps:
                caller = step(req, caller)
            return endpoint(req, caller)
        return respond(run)


def methods(*allowed: str) -> Middleware:
    """405 for any other method."""
    def step(req: Request, caller: Caller) -> Caller:
        allow_methods(req, *allowed)
        return caller
    return step


def bearer(tokens: ApiTokens, scope: str | None = None) -> Middleware:
    """The bearer token's client (401 without a valid one), which must hold `scope` (403 otherwise)."""
    def step(req: Request, caller: Caller) -> Caller:
        client = tokens.authenticate(req.headers.get("Authorization"))
        if scope:
            client.require(scope)
        return replace(caller, client=client)
    return step


def budget(limit: RequestBudget) -> Middleware:
    """The client's request budget in this replica (429 with Retry-After past it). After `bearer`."""
    def step(req: Request, caller: Caller) -> Caller:
        if caller.client is None:
            raise Unauthorized("the request budget is per API client: authenticate first")
        limit.hit(f"api:{caller.client.name}")
        return caller
    return step
