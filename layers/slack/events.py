"""The Events API: Slack POSTs JSON, signed like a command, to the app's event request URL.

    url_verification  answered with its challenge (after the signature check: Slack signs it too)
    event_callback    acknowledged at once (200); the event's handler runs on the front's pool. Slack retries
                      an event it thinks was lost with a new signature, so each event_id is handled once
                      (the same shared replay guard as signatures)

Example:
    SLACK.handle(event, events={"app_home_opened": publish_home})
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from layers.errors import BadInput


@dataclass(frozen=True)
class SlackEvent:
    type: str                  # url_verification | event_callback | ...
    challenge: str = ""
    event_id: str = ""
    team_id: str = ""
    event: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The inner event's type, e.g. app_home_opened."""
        return str(self.event.get("type", ""))

    @property
    def user_id(self) -> str:
        return str(self.event.get("user", ""))

    @property
    def principal(self) -> str | None:
        return f"slack:{self.team_id}:{self.user_id}" if self.team_id and self.user_id else None


def is_event(event) -> bool:
    """The Events API posts JSON; commands and interactions are form-encoded."""
    return (event.headers.get("Content-Type") or "").split(";")[0].strip().lower() == "application/json"


def parse_event(body: bytes) -> SlackEvent:
    try:
        p = json.loads(body or b"")
    except ValueError:
        raise BadInput("a Slack event must be JSON") from None
    if not isinstance(p, dict) or not isinstance(p.get("event") or {}, dict):
        raise BadInput("a Slack event must be a JSON object")
    return SlackEvent(type=str(p.get("type", "")), challenge=str(p.get("challenge", "")),
                      event_id=str(p.get("event_id", "")), team_id=str(p.get("team_id", "")),
                      event=dict(p.get("event") or {}))
