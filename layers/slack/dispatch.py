"""The Slack front, shared by every function: dispatch a verified request (layers.slack.verify) to its work,
acknowledge within 3 s, and deliver the rest (layers.slack.delivery).

Example (a handler):
    SLACK = W.slack("/predict", "/predict IMAGE_URL", nargs=(1, 1))        # layers.wiring: SlackFront.from_settings
    def handle(event, context):
        if is_slack(event):
            return SLACK.handle(event, lambda cmd: predict_message(service(cmd.args[0]), cmd.args[0]))
        ...JSON API...

Flow of a slash command (same path as the JSON API, told apart by its form content type):
  1. the checks, a middleware chain (layers.slack.verify.SlackChecks: each returns an answer that stops the
     request, or None):
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
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Callable
from urllib.parse import parse_qs

from layers.config import SlackSettings
from layers.errors import AfterDarkError
from layers.slack.delivery import deliver, response_url_allowed
from layers.slack.interactions import is_interaction, parse_interaction
from layers.slack.reply import Reply, ephemeral, error_reply, http_reply
from layers.slack.verify import SlackChecks

log = logging.getLogger("afterdark.slack")


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


class SlackFront:
    def __init__(self, settings: SlackSettings, command: str, usage: str, nargs: tuple[int, int],
                 response_type: str | None = None, executor: ThreadPoolExecutor | None = None,
                 replay_guard=None, inline_budget_s: float | None = None) -> None:
        self.settings, self.command, self.usage, self.nargs = settings, command, usage, nargs
        self.inline_budget_s = settings.inline_budget_s if inline_budget_s is None else inline_budget_s
        self.response_type = response_type or settings.response_type
        self.verify = SlackChecks(settings, replay_guard)
        self.is_admin = self.verify.is_admin
        self._pool = executor or ThreadPoolExecutor(settings.workers, thread_name_prefix="slack")
        self._inflight = threading.BoundedSemaphore(settings.max_inflight)

    @classmethod
    def from_settings(cls, settings, command: str, usage: str, nargs: tuple[int, int], **kw) -> "SlackFront":
        return cls(settings.slack, command, usage, nargs, **kw)

    def help(self, why: str = "") -> Reply:
        return ephemeral((f"{why}\n" if why else "") + f"Usage: `{self.usage}`", f"{self.command}")

    def handle(self, event, work: Callable[[SlashCommand], Reply], actions: dict | None = None) -> dict:
        """A slash command (`work`), or a button click (`actions`: action name -> (Interaction, Action) -> Reply)."""
        stop = self.verify.run(event)
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
                deliver(cmd.response_url, f.result())
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
        future = self._pool.submit(lambda: deliver(click.response_url,
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
            deliver(cmd.response_url, final)
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
