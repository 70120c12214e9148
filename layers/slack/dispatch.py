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

from slack_sdk.errors import SlackApiError

from layers.config import SlackSettings
from layers.errors import AfterDarkError, BadInput
from layers.slack.delivery import deliver, response_url_allowed
from layers.slack.events import is_event, parse_event
from layers.slack.interactions import Interaction, is_interaction, parse_interaction
from layers.slack.reply import Reply, ephemeral, error_reply, http_reply
from layers.slack.verify import SlackChecks
from layers.slack.web import web_client

log = logging.getLogger("afterdark.slack")


ACK = {"statusCode": 200, "body": "", "headers": {}}      # Slack's "got it": an empty 200
BUSY = "Too busy right now; please try again in a few seconds."
INPUT_BLOCK = "label"          # a modal's input block that a wrong submission's error is shown beside

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
        self.web = web_client(settings)          # views.open, views.publish, messages to a user (bot token)
        self._inflight = threading.BoundedSemaphore(settings.max_inflight)

    @classmethod
    def from_settings(cls, settings, command: str, usage: str, nargs: tuple[int, int], **kw) -> "SlackFront":
        return cls(settings.slack, command, usage, nargs, **kw)

    def help(self, why: str = "") -> Reply:
        return ephemeral((f"{why}\n" if why else "") + f"Usage: `{self.usage}`", f"{self.command}")

    def handle(self, event, work: Callable[[SlashCommand], Reply] | None, actions: dict | None = None,
               shortcuts: dict | None = None, submissions: dict | None = None, events: dict | None = None) -> dict:
        """A slash command (`work`), a button click (`actions`: action name -> (Interaction, Action) -> Reply),
        a message shortcut (`shortcuts`: callback id -> Interaction -> Reply | None, delivered to its
        response_url), a modal's submission (`submissions`: callback id -> Interaction -> Reply, told to the
        user) or an Events API event (`events`: event type -> SlackEvent -> None)."""
        stop = self.verify.run(event)
        if stop is not None:
            return stop
        if event.method != "POST":
            return http_reply(200, self.help("Slack commands are POSTs."))
        if b"ssl_check=1" in event.body:
            return ACK
        if is_event(event):
            return self.on_event(event, events or {})
        if is_interaction(event.body):
            return self.interact(event, actions or {}, shortcuts or {}, submissions or {})
        if work is None:
            return http_reply(200, ephemeral("This URL takes Slack's interactions and events, not commands."))
        cmd = SlashCommand.from_body(event.body)
        cmd = replace(cmd, admin=self.is_admin(cmd))
        lo, hi = self.nargs
        if not lo <= len(cmd.args) <= hi or (cmd.args and cmd.args[0] in ("help", "-h", "--help")):
            return http_reply(200, self.help())
        if not self._reserve():
            return http_reply(200, ephemeral(BUSY))
        future = self._spawn(self._run, work, cmd)
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

    def interact(self, event, actions: dict, shortcuts: dict | None = None, submissions: dict | None = None) -> dict:
        """Acknowledge a click or a shortcut now (200, empty), run its work on the pool, deliver to its
        response_url; a modal's submission is answered as Slack asks (layers.slack.shortcuts)."""
        try:
            click = parse_interaction(event.body)
        except AfterDarkError as err:
            return http_reply(400, error_reply(err))
        click = replace(click, admin=self.is_admin(click))
        if click.type == "message_action":
            return self.shortcut(click, (shortcuts or {}).get(click.callback_id))
        if click.type == "view_submission":
            return self.submission(click, (submissions or {}).get(click.callback_id))
        known = [(actions[a.name], a) for a in click.actions if a.name in actions]
        if click.type != "block_actions" or not known:
            return http_reply(400, ephemeral(f"this app does not handle {click.type or 'that'} interaction"))
        handler, action = known[0]
        return self._answer_later(click, lambda c: handler(c, action), "click")

    def shortcut(self, click: Interaction, work: Callable[[Interaction], Reply | None] | None) -> dict:
        """A message shortcut: acknowledged at once; its work (which may open a modal with the trigger id, good
        for 3 s) runs on the pool, and a Reply it returns goes to the shortcut's response_url."""
        if work is None:
            return http_reply(400, ephemeral(f"this app has no shortcut {click.callback_id!r}"))
        return self._answer_later(click, work, "shortcut")

    def _answer_later(self, click: Interaction, work: Callable[[Interaction], Reply | None], what: str) -> dict:
        """Acknowledge now (200, empty); run `work` on the pool and deliver its Reply to the response_url."""
        if not response_url_allowed(click.response_url, self.settings.response_url_allow):
            log.warning("not answering a %s at response_url %r: not a Slack hooks URL", what, click.response_url)
            return http_reply(400, ephemeral(f"this {what} has no valid response_url to answer on"))
        if not self._reserve():
            return http_reply(503, ephemeral(BUSY))

        def run() -> None:
            reply = self._run(work, click)
            if reply is not None:
                deliver(click.response_url, reply)
        self._spawn(run)
        return ACK

    def _reserve(self) -> bool:
        """A place among the `max_inflight` pieces of work; False when all are taken (answer "busy")."""
        return self._inflight.acquire(blocking=False)

    def _spawn(self, fn: Callable, *args):
        """`fn` on the pool, in the place _reserve() took; the place is given back when it ends."""
        future = self._pool.submit(fn, *args)
        future.add_done_callback(lambda _: self._inflight.release())
        return future

    def submission(self, click: Interaction, work: Callable[[Interaction], Reply] | None) -> dict:
        """A modal's submission: its work runs on the pool; done within the inline budget, the modal closes
        (or shows a wrong input's error beside it), else it closes at once and the outcome follows. The
        outcome (a receipt, or why it failed) goes to the user as a message from the app."""
        if work is None:
            return http_reply(400, ephemeral(f"this app has no form {click.callback_id!r}"))
        if not self._reserve():
            return {"statusCode": 200, "body": {"response_action": "errors", "errors": {INPUT_BLOCK: BUSY}},
                    "headers": {}}
        future = self._spawn(work, click)
        try:
            reply = future.result(timeout=self.inline_budget_s)
        except FutureTimeout:
            future.add_done_callback(lambda f: self.tell(click, self._outcome(f, click)))
            return ACK
        except BadInput as err:                     # shown beside the input, the modal stays open
            return {"statusCode": 200, "body": {"response_action": "errors", "errors": {INPUT_BLOCK: err.message}},
                    "headers": {}}
        except Exception:
            reply = self._outcome(future, click)
        self._pool.submit(self.tell, click, reply)         # after the answer: Slack's 3 s are not spent on it
        return {"statusCode": 200, "body": {"response_action": "clear"}, "headers": {}}

    def _outcome(self, future, click) -> Reply:
        try:
            return future.result()
        except AfterDarkError as err:
            return error_reply(err)
        except Exception:
            log.exception("Slack %s failed", click.callback_id)
            return ephemeral(":warning: Something went wrong on our side; the error is logged.", "That did not work")

    def tell(self, click: Interaction, reply: Reply) -> None:
        """A message from the app to the user (chat.postMessage to their id: the app's Messages tab)."""
        if self.web is None or not click.user_id:
            log.warning("cannot tell %s the outcome of %s: no bot token", click.user_id, click.callback_id)
            return
        try:
            self.web.chat_postMessage(channel=click.user_id, text=reply.text, blocks=reply.blocks)
        except (SlackApiError, OSError) as err:
            log.warning("could not tell %s the outcome of %s: %s", click.user_id, click.callback_id, err)

    def on_event(self, event, handlers: dict) -> dict:
        """An Events API request: the url_verification challenge answered; an event acknowledged at once,
        handled once per event_id, on the pool."""
        try:
            ev = parse_event(event.body)
        except AfterDarkError as err:
            return http_reply(400, error_reply(err))
        if ev.type == "url_verification":
            return {"statusCode": 200, "body": {"challenge": ev.challenge}, "headers": {}}
        work = handlers.get(ev.kind) if ev.type == "event_callback" else None
        if work is None:
            return ACK                      # not an event this app handles
        if not self._reserve():             # busy: Slack retries it later, so it is not marked as seen yet
            return {"statusCode": 503, "body": "", "headers": {}}
        if ev.event_id and not self.verify.first_time(f"event:{ev.event_id}"):
            self._inflight.release()
            return ACK                      # a retry of one already handled
        self._spawn(self._run, lambda _: work(ev), ev)
        return ACK

    def _follow_up(self, cmd: SlashCommand, reply: Reply) -> None:
        """A reply's second phase: computed on the pool, posted over the first one through response_url."""
        if reply.follow_up is None or not response_url_allowed(cmd.response_url, self.settings.response_url_allow):
            return

        def second() -> None:
            final = self._run(lambda _: reply.follow_up(), cmd)
            final.replace_original = final.response_type != "ephemeral"      # an error is said aside, not over
            deliver(cmd.response_url, final)
        self._pool.submit(second)

    def _run(self, work: Callable[[object], Reply | None], cmd) -> Reply | None:
        try:
            reply = work(cmd)
            if reply is not None and reply.response_type != "ephemeral":
                reply.response_type = self.response_type
            return reply
        except AfterDarkError as err:
            return error_reply(err)
        except Exception:
            log.exception("Slack %s failed", getattr(cmd, "command", "interaction"))
            return ephemeral(":warning: Something went wrong on our side; the error is logged.", "That did not work")
