"""Slack: one front for every function's slash command, and the Block Kit messages.

    front.py    SlackFront: verify the signature (slack-sdk) and the replay guard, parse, acknowledge within
                3 s, deliver to response_url; SlashCommand, Reply, is_slack
    interactions.py  button clicks: Interaction, Action, is_interaction, parse_interaction
    review.py   posting unconfident answers to a review channel with the bot token (WebClient)
    blocks.py   the Block Kit messages of each command (built with slack-sdk's block models)
    replay_guard.py  ReplayGuard: each signed request accepted once, across replicas (PostgreSQL)

The adapter between Slack and the services: it may import edge, serving's values, ledger's receipt, registry's
tables and matching's rules to format them; no service package imports it.
"""
from layers.slack.front import (FORM_FIELDS, LocalReplayGuard, Reply, SIGNATURE_HEADERS, SLACK_HOOK_HOSTS, SlackFront,
                                SlashCommand, ephemeral, error_reply, http_reply, is_slack, response_url_allowed, unwrap)
from layers.slack.interactions import Action, Interaction, is_interaction, parse_interaction

__all__ = ["Action", "Interaction", "is_interaction", "parse_interaction", "FORM_FIELDS", "LocalReplayGuard", "Reply", "SIGNATURE_HEADERS", "SLACK_HOOK_HOSTS", "SlackFront",
           "SlashCommand", "ephemeral", "error_reply", "http_reply", "is_slack", "response_url_allowed", "unwrap"]
