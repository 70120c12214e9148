"""The Slack front, shared by every function: verify, parse, acknowledge within 3 s, deliver, format.

Example (a handler):
    SLACK = SlackFront.from_settings(SETTINGS, command="/predict", usage="/predict IMAGE_URL", nargs=(1, 1))
    def handle(event, context):
        if is_slack(event):
            return SLACK.handle(event, lambda cmd: predict_message(service(cmd.args[0]), cmd.args[0]))
        ...JSON API...

Flow of a slash command (same path as the JSON API, told apart by its form content type):
  1. the checks, a middleware chain (`checks`: each returns an answer that stops the request, or None):
     require_signature (slack-sdk's SignatureVerifier over the RAW body, 5-minute window; missing or bad:
     401; no signing secret configured: every Slack request is refused, 503, never accepted unsigned), then
     refuse_replays (each signature accepted once, on every replica: the guard is a table in PostgreSQL,
     layers.slack.replay_guard.ReplayGuard; while the database is down, an in-process guard stands in; a replay: 401).
     No work is done for a request that a check stopped.
  2. parse the form into a SlashCommand, with `principal` (slack:<team>:<user>) and `admin` (whether that
     principal, or the bare user id, is in the admin list: secret slack-admins / SLACK_ADMINS). What an
     admin may do that others may not is the work's decision (e.g. layers.registry.commands.run);
     wrong usage -> an ephemeral help message (200), never a stack trace.
  3. run the work on a bounded worker pool and wait up to `inline_budget_s` (default 0.8 s: a prediction
     takes milliseconds, so only slow image hosts miss it; Slack's 3000 ms leave a wide margin): done -> the reply inline (200); not done -> an ephemeral "working on it" (200) now, and
     the same worker delivers the result to `response_url` with slack-sdk's WebhookClient when it finishes
     (status checked; connection errors, 429 and 5xx retried; at most 4 attempts, inside Slack's 5 uses).
     response_url must be a Slack hooks URL (or named in SLACK_RESPONSE_URL_ALLOW, for local try-outs).

IMPORTANT: the worker pool lives in the function process. Under OpenFaaS, of-watchdog keeps the process for
`healthcheck_interval` after SIGTERM, so work in flight finishes and delivers before the instance goes away
(README, "Slack: the 3-second budget").
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from slack_sdk.http_retry.builtin_handlers import (ConnectionErrorRetryHandler, RateLimitErrorRetryHandler,
                                                   ServerErrorRetryHandler)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from layers.config import SlackSettings
from layers.errors import AfterDarkError, Unavailable
from layers.slack.interactions import Interaction, is_interaction, parse_interaction

log = logging.getLogger("afterdark.slack")
SLACK_HOOK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
SIGNATURE_HEADERS = ("X-Slack-Signature", "X-Slack-Request-Timestamp")


def is_slack(event) -> bool:
    """A slash command arrives form-encoded (the JSON API never is) or carries Slack's signature headers."""
    ctype = (event.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return ctype == "application/x-www-form-urlencoded" or any(event.headers.get(h) for h in SIGNATURE_HEADERS)


FORM_FIELDS = ("command", "text", "user_id", "user_name", "channel_id", "team_id", "response_url", "trigger_id")


@dataclass(frozen=True)
class SlashCommand:
    command: str
    text: str
    user_id: str
    user_name: str
    channel_id: str
    team_id: str
    response_url: str
    trigger_id: str
    body_sha256: str = ""
    admin: bool = False              # set by the front from the admin list

    @property
    def principal(self) -> str | None:
        """slack:<team>:<user>, the identity votes and DataOps edits are recorded under."""
        return f"slack:{self.team_id}:{self.user_id}" if self.team_id and self.user_id else None

    @property
    def args(self) -> list[str]:
        return [unwrap(a) for a in self.text.split()]

    @property
    def request_key(self) -> str:
        """This invocation's idempotency key: Slack's trigger id (one per invocation), else the body's hash."""
        return f"trigger:{self.trigger_id}" if self.trigger_id else f"body:{self.body_sha256}"

    @classmethod
    def from_body(cls, body: bytes) -> "SlashCommand":
        f = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        return cls(**{name: f.get(name, "") for name in FORM_FIELDS}, body_sha256=hashlib.sha256(body).hexdigest())


def unwrap(arg: str) -> str:
    """Slack escapes links as <https://x|label> or <https://x>: keep the URL."""
    if arg.startswith("<") and arg.endswith(">"):
        return arg[1:-1].split("|", 1)[0]
    return arg


@dataclass
class Reply:
    """A Slack message: `text` (the notification fallback) and Block Kit `blocks`."""
    text: str
    blocks: list[dict] = field(default_factory=list)
    response_type: str = "ephemeral"      # in_channel | ephemeral
    replace_original: bool = False        # through response_url: replace the message this command posted
    # More to say later: the front runs it after this reply and posts its Reply over this one (two phases)
    follow_up: Callable[[], "Reply"] | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict:
        out = {"response_type": self.response_type, "text": self.text, "blocks": self.blocks}
        return {**out, "replace_original": True} if self.replace_original else out


def ephemeral(text: str, title: str | None = None) -> Reply:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": (f"*{title}*\n" if title else "") + text}}]
    return Reply(text=text, blocks=blocks, response_type="ephemeral")


def error_reply(err: AfterDarkError) -> Reply:
    return ephemeral(f":warning: {err.message}", "That did not work")


class LocalReplayGuard:
    """Each (timestamp, signature) is accepted once by this process; remembers the last `size` within the
    5-minute window. The stand-in while the shared guard (PostgreSQL) is unavailable."""

    def __init__(self, size: int = 10_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def first_time(self, key: str) -> bool:
        now = time.time()
        with self._lock:
            while self._seen and (len(self._seen) > self.size or next(iter(self._seen.values())) < now - 360):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def http_reply(status: int, reply: Reply) -> dict:
    return {"statusCode": status, "body": reply.to_json(), "headers": {"Content-Type": "application/json"}}


def response_url_allowed(url: str, allow: tuple[str, ...]) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname in SLACK_HOOK_HOSTS:
        return True
    return bool(parts.hostname) and (parts.netloc in allow or parts.hostname in allow)


class SlackFront:
    def __init__(self, settings: SlackSettings, command: str, usage: str, nargs: tuple[int, int],
                 response_type: str | None = None, executor: ThreadPoolExecutor | None = None,
                 replay_guard=None, inline_budget_s: float | None = None) -> None:
        self.settings, self.command, self.usage, self.nargs = settings, command, usage, nargs
        self.inline_budget_s = settings.inline_budget_s if inline_budget_s is None else inline_budget_s
        self.response_type = response_type or settings.response_type
        self._verifier = SignatureVerifier(settings.signing_secret) if settings.signing_secret else None
        self._local_replays = LocalReplayGuard()
        self._replays = replay_guard or self._local_replays
        self._pool = executor or ThreadPoolExecutor(settings.workers, thread_name_prefix="slack")
        self._inflight = threading.BoundedSemaphore(settings.max_inflight)
        self.checks: list[Callable[[object], dict | None]] = [self.require_signature, self.refuse_replays]

    @classmethod
    def from_settings(cls, settings, command: str, usage: str, nargs: tuple[int, int], **kw) -> "SlackFront":
        return cls(settings.slack, command, usage, nargs, **kw)

    # -- the checks (a middleware chain: each returns an answer to stop, or None to go on) -------------------
    def require_signature(self, event) -> dict | None:
        if self._verifier is None:
            return http_reply(503, ephemeral("This function has no Slack signing secret configured "
                                             "(secret slack-signing-secret or SLACK_SIGNING_SECRET), so it refuses Slack requests."))
        headers = {k: v for k, v in event.headers.items()}
        if not all(event.headers.get(h) for h in SIGNATURE_HEADERS):
            return http_reply(401, ephemeral("missing Slack signature headers"))
        stamp = event.headers.get("X-Slack-Request-Timestamp", "")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):   # slack-sdk raises on int("abc")
            return http_reply(401, ephemeral("malformed X-Slack-Request-Timestamp: seconds since the epoch"))
        if not self._verifier.is_valid_request(event.body, headers):
            return http_reply(401, ephemeral("invalid or expired Slack signature"))
        return None

    def refuse_replays(self, event) -> dict | None:
        key = event.headers.get("X-Slack-Request-Timestamp") + ":" + event.headers.get("X-Slack-Signature")
        if not self._first_time(key):
            return http_reply(401, ephemeral("this Slack request was already received (replay)"))
        return None

    def is_admin(self, who: "SlashCommand | Interaction") -> bool:
        """Whether a command's or a click's user is in the admin list (as slack:<team>:<user>, or bare)."""
        admins = self.settings.admins
        return bool(who.user_id) and (who.principal in admins or who.user_id in admins)

    def _first_time(self, key: str) -> bool:
        try:
            return self._replays.first_time(key)
        except Unavailable as err:
            log.warning("shared replay guard unavailable, using this process's: %s", err.message)
            return self._local_replays.first_time(key)

    # -- the adapter ------------------------------------------------------------------------------------
    def help(self, why: str = "") -> Reply:
        return ephemeral((f"{why}\n" if why else "") + f"Usage: `{self.usage}`", f"{self.command}")

    def handle(self, event, work: Callable[[SlashCommand], Reply], actions: dict | None = None) -> dict:
        """A slash command (`work`), or a button click (`actions`: action name -> (Interaction, Action) -> Reply)."""
        for check in self.checks:
            stop = check(event)
            if stop is not None:
                return stop
        if event.method != "POST":
            return http_reply(200, self.help("Slack commands are POSTs."))
        if b"ssl_check=1" in event.body:
            return {"statusCode": 200, "body": "", "headers": {}}
        if is_interaction(event.body):
            return self.interact(event, actions or {})
        cmd = SlashCommand.from_body(event.body)
        cmd = replace(cmd, admin=self.is_admin(cmd))
        lo, hi = self.nargs
        if not lo <= len(cmd.args) <= hi or (cmd.args and cmd.args[0] in ("help", "-h", "--help")):
            return http_reply(200, self.help())
        if not self._inflight.acquire(blocking=False):
            return http_reply(200, ephemeral("Too busy right now; please try again in a few seconds."))
        future = self._pool.submit(self._run, work, cmd)
        future.add_done_callback(lambda _: self._inflight.release())
        try:
            reply = future.result(timeout=self.inline_budget_s)
            self._follow_up(cmd, reply)
            return http_reply(200, reply)
        except FutureTimeout:
            if not response_url_allowed(cmd.response_url, self.settings.response_url_allow):
                log.warning("not delivering to response_url %r: not a Slack hooks URL", cmd.response_url)
                return http_reply(200, ephemeral("Still working, but this request has no valid response_url to answer on."))

            def later(f):
                self.deliver(cmd.response_url, f.result())
                self._follow_up(cmd, f.result())
            future.add_done_callback(lambda f: threading.Thread(target=later, args=(f,), name="slack-deliver",
                                                                daemon=True).start())
            return http_reply(200, ephemeral(f":hourglass_flowing_sand: Working on `{cmd.command} {cmd.text}`…"))

    def interact(self, event, actions: dict) -> dict:
        """Acknowledge a click now (200, empty), run its action on the pool, deliver to its response_url."""
        try:
            click = parse_interaction(event.body)
        except AfterDarkError as err:
            return http_reply(400, error_reply(err))
        click = replace(click, admin=self.is_admin(click))
        known = [(actions[a.name], a) for a in click.actions if a.name in actions]
        if click.type != "block_actions" or not known:
            return http_reply(400, ephemeral(f"this app does not handle {click.type or 'that'} interaction"))
        if not response_url_allowed(click.response_url, self.settings.response_url_allow):
            log.warning("not answering a click at response_url %r: not a Slack hooks URL", click.response_url)
            return http_reply(400, ephemeral("this click has no valid response_url to answer on"))
        if not self._inflight.acquire(blocking=False):
            return http_reply(503, ephemeral("Too busy right now; please click again in a few seconds."))
        handler, action = known[0]
        future = self._pool.submit(lambda: self.deliver(click.response_url,
                                                        self._run(lambda _: handler(click, action), click)))
        future.add_done_callback(lambda _: self._inflight.release())
        return {"statusCode": 200, "body": "", "headers": {}}

    def _follow_up(self, cmd: SlashCommand, reply: Reply) -> None:
        """A reply's second phase: computed on the pool, posted over the first one through response_url."""
        if reply.follow_up is None or not response_url_allowed(cmd.response_url, self.settings.response_url_allow):
            return

        def second() -> None:
            final = self._run(lambda _: reply.follow_up(), cmd)
            final.replace_original = final.response_type != "ephemeral"      # an error is said aside, not over
            self.deliver(cmd.response_url, final)
        self._pool.submit(second)

    def _run(self, work: Callable[[object], Reply], cmd) -> Reply:
        try:
            reply = work(cmd)
            if reply.response_type != "ephemeral":
                reply.response_type = self.response_type
            return reply
        except AfterDarkError as err:
            return error_reply(err)
        except Exception:
            log.exception("Slack %s failed", getattr(cmd, "command", "interaction"))
            return ephemeral(":warning: Something went wrong on our side; the error is logged.", "That did not work")

    def deliver(self, response_url: str, reply: Reply) -> int:
        client = WebhookClient(response_url, timeout=10, retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=3), RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=3)])
        try:
            resp = client.send_dict(reply.to_json())
            status = resp.status_code
        except Exception as err:                      # delivery is best effort; never crash the worker
            log.warning("response_url delivery failed: %s", err)
            status = 0
        if status != 200:
            log.warning("response_url answered %s", status)
        return status
