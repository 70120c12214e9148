"""The Slack Web API client, made once from the settings: the bot token (secret slack-bot-token) and the API
URL (SLACK_API_URL; locally a receiver on loopback that answers like Slack, dev/slack.py listen).

Example:
    client = web_client(settings.slack)          # None without a bot token: nothing can be posted
    client.chat_postMessage(channel="U123", text="...", blocks=[...])
"""
from __future__ import annotations

from slack_sdk import WebClient

from layers.config import SlackSettings


def web_client(settings: SlackSettings, timeout_s: int = 5) -> WebClient | None:
    return WebClient(token=settings.bot_token, base_url=settings.api_url, timeout=timeout_s) if settings.bot_token else None
