"""Slack interactivity: button clicks (`block_actions`), message shortcuts (`message_action`) and modal
submissions (`view_submission`), told apart from slash commands by their content.

Slack POSTs a click to the app's one interactivity URL as a form with a single `payload` field (JSON), signed
like a slash command. `SlackFront.handle` verifies it with the same checks, acknowledges at once (200, empty:
Slack ignores a body here), and runs the action whose `action_id` prefix matches, delivering its Reply to the
click's `response_url` (usually `replace_original`, to update the message that holds the buttons).

Example:
    actions = {"vote": lambda click, action: tally_message(...)}      # action_id "vote:engineer" -> "vote"
    SLACK.handle(event, slash_work, actions=actions)

A click is one vote however often Slack delivers it: its idempotency key is the click's trigger_id.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from layers.errors import BadInput


@dataclass(frozen=True)
class Action:
    action_id: str
    value: str
    block_id: str = ""

    @property
    def name(self) -> str:
        """The handler's name: the part of action_id before ':' ("vote:engineer" -> "vote")."""
        return self.action_id.split(":", 1)[0]

    @property
    def arg(self) -> str:
        return self.action_id.split(":", 1)[1] if ":" in self.action_id else ""

    def data(self) -> dict:
        """The button's value, which our own messages set to a JSON object."""
        try:
            value = json.loads(self.value or "{}")
        except ValueError:
            raise BadInput("this button carries no data this app understands") from None
        if not isinstance(value, dict):
            raise BadInput("this button carries no data this app understands")
        return value


@dataclass(frozen=True)
class SlackFile:
    """A file attached to a message (a shortcut's payload names them): fetched from url_private with the bot
    token (layers.slack.files)."""
    id: str
    name: str
    mimetype: str
    url_private: str

    @property
    def is_image(self) -> bool:
        return self.mimetype.startswith("image/")


@dataclass(frozen=True)
class Interaction:
    type: str                # block_actions | message_action | view_submission
    team_id: str
    user_id: str
    trigger_id: str
    response_url: str
    actions: list[Action] = field(default_factory=list)
    message_blocks: list[dict] = field(default_factory=list)
    admin: bool = False
    callback_id: str = ""    # a shortcut's, or the submitted view's
    channel_id: str = ""
    files: list[SlackFile] = field(default_factory=list)       # a message shortcut's message's files
    view: dict = field(default_factory=dict)                   # view_submission: id, private_metadata, state

    @property
    def principal(self) -> str | None:
        return f"slack:{self.team_id}:{self.user_id}" if self.team_id and self.user_id else None

    @property
    def request_key(self) -> str:
        """This interaction's idempotency key: a submitted view is one vote however often Slack delivers it
        (its view id); a click or a shortcut, its trigger id."""
        if self.type == "view_submission" and self.view.get("id"):
            return f"view:{self.view['id']}"
        return f"trigger:{self.trigger_id}"


def is_interaction(body: bytes) -> bool:
    return body.startswith(b"payload=") or b"&payload=" in body


def parse_interaction(body: bytes) -> Interaction:
    fields = parse_qs(body.decode("utf-8", "replace"))
    try:
        p = json.loads(fields["payload"][0])
    except (KeyError, IndexError, ValueError):
        raise BadInput("an interaction must carry a JSON payload") from None
    if not isinstance(p, dict):
        raise BadInput("an interaction's payload must be a JSON object")
    user, team = p.get("user") or {}, p.get("team") or {}
    actions = [Action(str(a.get("action_id", "")), str(a.get("value", "")), str(a.get("block_id", "")))
               for a in p.get("actions") or [] if isinstance(a, dict)]
    message, view = p.get("message") or {}, p.get("view") or {}
    if not isinstance(message, dict) or not isinstance(view, dict):
        raise BadInput("an interaction's message and view must be JSON objects")
    files = [SlackFile(str(f.get("id", "")), str(f.get("name", "")), str(f.get("mimetype", "")),
                       str(f.get("url_private", ""))) for f in message.get("files") or [] if isinstance(f, dict)]
    return Interaction(type=str(p.get("type", "")), team_id=str(team.get("id") or user.get("team_id") or ""),
                       user_id=str(user.get("id", "")), trigger_id=str(p.get("trigger_id", "")),
                       response_url=str(p.get("response_url", "")), actions=actions,
                       message_blocks=list(message.get("blocks") or []),
                       callback_id=str(p.get("callback_id") or view.get("callback_id") or ""),
                       channel_id=str((p.get("channel") or {}).get("id", "")), files=files, view=view)
