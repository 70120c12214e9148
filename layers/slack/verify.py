"""Verifying a Slack request before any work: its signature (slack-sdk's SignatureVerifier over the RAW body,
5-minute window), each signature accepted once (the shared replay guard, with this process's as the stand-in
while PostgreSQL is down), and who is an admin.

Example:
    checks = SlackChecks(settings.slack, replay_guard=ReplayGuard(db))
    stop = checks.run(request)          # None: go on; else the JSON answer (401 / 503) that stops it
    checks.is_admin(cmd)                # the principal, or the bare user id, is in the admin list

No signing secret configured: every Slack request is refused (503), never accepted unsigned.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from slack_sdk.signature import SignatureVerifier

from layers.config import SlackSettings
from layers.errors import Unavailable
from layers.slack.reply import ephemeral, http_reply

if TYPE_CHECKING:
    from layers.slack.dispatch import SlashCommand
    from layers.slack.interactions import Interaction

log = logging.getLogger("afterdark.slack")
SIGNATURE_HEADERS = ("X-Slack-Signature", "X-Slack-Request-Timestamp")


def is_slack(event) -> bool:
    """A slash command arrives form-encoded (the JSON API never is) or carries Slack's signature headers."""
    ctype = (event.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return ctype == "application/x-www-form-urlencoded" or any(event.headers.get(h) for h in SIGNATURE_HEADERS)


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


class SlackChecks:
    """The Slack side's middleware chain: each check returns an answer that stops the request, or None."""

    def __init__(self, settings: SlackSettings, replay_guard=None) -> None:
        self.settings = settings
        self._verifier = SignatureVerifier(settings.signing_secret) if settings.signing_secret else None
        self._local_replays = LocalReplayGuard()
        self._replays = replay_guard or self._local_replays
        self.checks = [self.require_signature, self.refuse_replays]

    def run(self, event) -> dict | None:
        for check in self.checks:
            stop = check(event)
            if stop is not None:
                return stop
        return None

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

    def first_time(self, key: str) -> bool:
        """Whether `key` (a signature, an event id) is seen for the first time, on every replica."""
        return self._first_time(key)

    def _first_time(self, key: str) -> bool:
        try:
            return self._replays.first_time(key)
        except Unavailable as err:
            log.warning("shared replay guard unavailable, using this process's: %s", err.message)
            return self._local_replays.first_time(key)
