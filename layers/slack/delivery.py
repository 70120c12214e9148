"""Delivering a reply later, through a command's or a click's response_url (slack-sdk's WebhookClient), and only
to Slack's own hooks hosts (or those named in SLACK_RESPONSE_URL_ALLOW, for local try-outs).

Example:
    if response_url_allowed(url, settings.slack.response_url_allow):
        deliver(url, reply)             # the HTTP status (0: could not connect); retried on 429, 5xx, resets
"""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from slack_sdk.http_retry.builtin_handlers import (ConnectionErrorRetryHandler, RateLimitErrorRetryHandler,
                                                   ServerErrorRetryHandler)
from slack_sdk.webhook import WebhookClient

from layers.slack.reply import Reply

log = logging.getLogger("afterdark.slack")
SLACK_HOOK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")


def response_url_allowed(url: str, allow: tuple[str, ...]) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname in SLACK_HOOK_HOSTS:
        return True
    return bool(parts.hostname) and (parts.netloc in allow or parts.hostname in allow)


def deliver(response_url: str, reply: Reply) -> int:
    """At most 4 attempts, inside Slack's 5 uses of a response_url; never raises."""
    client = WebhookClient(response_url, timeout=10, retry_handlers=[
        ConnectionErrorRetryHandler(max_retry_count=3), RateLimitErrorRetryHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=3)])
    try:
        status = client.send_dict(reply.to_json()).status_code
    except Exception as err:                      # delivery is best effort; never crash the worker
        log.warning("response_url delivery failed: %s", err)
        status = 0
    if status != 200:
        log.warning("response_url answered %s", status)
    return status
