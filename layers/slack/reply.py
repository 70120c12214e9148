"""What a Slack function answers: a Reply (text and Block Kit blocks), and its HTTP form.

Example:
    http_reply(200, ephemeral("Usage: `/predict IMAGE_URL`", "/predict"))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from layers.errors import AfterDarkError


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


def http_reply(status: int, reply: Reply) -> dict:
    return {"statusCode": status, "body": reply.to_json(), "headers": {"Content-Type": "application/json"}}
