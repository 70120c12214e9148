"""Crowd review: unconfident answers are posted to a review channel, where anyone can correct them with one
click (the same vote buttons as the answer itself; the fix function records the clicks).

Example:
    review = ReviewChannel(settings.slack, links, labels)    # off unless a channel and a bot token are set
    review.submit(prediction)     # returns at once; a worker of its own posts it (chat.postMessage, WebClient)

Locally and in the tests, SLACK_API_URL points WebClient at a receiver on loopback that answers like the Web
API (dev/slack.py listen); nothing goes to Slack. The image is shown through a signed media link
(images/<sha256>), when the gateway is public.
"""
from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ContextBlock, ImageBlock, MarkdownTextObject, SectionBlock

from layers.config import SlackSettings
from layers.errors import AfterDarkError
from layers.edge.intake import is_public_url
from layers.edge.media import MediaLinks
from layers.registry import image_key
from layers.serving.offpath import OffPath
from layers.serving.prediction import Prediction
from layers.slack.blocks import bar, vote_buttons
from layers.slack.web import web_client

log = logging.getLogger("afterdark.review")


class ReviewChannel:
    def __init__(self, settings: SlackSettings, links: MediaLinks, labels: tuple[str, ...]) -> None:
        self.channel, self.links, self.labels = settings.review_channel, links, labels
        self.client = web_client(settings) if settings.review_channel else None
        self.posted = self.failed = 0
        self.queue = OffPath(maxsize=64) if self.client is not None else None

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def stats(self) -> dict:
        return {"channel": self.channel or None, "posted": self.posted, "failed": self.failed,
                "queue": self.queue.stats() if self.queue else None}

    def submit(self, p: Prediction) -> bool:
        """Queue the post (bounded; dropped and counted when Slack is slower than the unsure answers come)."""
        return self.queue is not None and self.queue.submit("review", lambda: self.post(p))

    def post(self, p: Prediction) -> None:
        """Post one unconfident answer (called off the hot path, after its image is stored)."""
        if self.client is None or not p.unconfident or not p.image_sha256:
            return
        blocks = [SectionBlock(text=MarkdownTextObject(
            text=f":mag: *Unsure:* {p.label} `{bar(p.confidence)}` · model `{p.model}` v{p.version}\n"
                 f"Is it right? One click is one vote; the model retrains on everyone's votes."))]
        try:
            url = self.links.url(image_key(p.image_sha256))
            if is_public_url(url):
                blocks.append(ImageBlock(image_url=url, alt_text="the image the model was unsure about"))
        except AfterDarkError:                   # no media key: the post goes without the picture
            pass
        blocks += [vote_buttons(p.image_sha256, p.model, p.label, self.labels),
                   ContextBlock(elements=[MarkdownTextObject(text=f"request `{p.request_id}`")])]
        try:
            self.client.chat_postMessage(channel=self.channel, text=f"unsure: {p.label} ({p.confidence:.0%})",
                                         blocks=[b.to_dict() for b in blocks])
            self.posted += 1
        except (SlackApiError, OSError) as err:
            self.failed += 1
            log.warning("review post for %s failed: %s", p.request_id, err)
