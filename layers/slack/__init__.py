"""Slack: one front for every function's slash command, and the Block Kit messages.

    dispatch.py SlackFront: a verified request to its work (a slash command or a click), acknowledged within
                3 s, the rest delivered later; SlashCommand
    verify.py   SlackChecks: the signature (slack-sdk), the replay guard, the admin list; is_slack
    delivery.py deliver() through response_url (WebhookClient), only to Slack's hooks hosts
    reply.py    Reply (text and blocks), ephemeral, error_reply, http_reply
    interactions.py  button clicks, shortcuts, form submissions: Interaction, Action, SlackFile, parse_interaction
    shortcuts.py     "Classify/Correct this image" and the correction form (views.open); what a submission chose
    events.py   the Events API: url_verification, event_callback (SlackEvent)
    files.py    a shared image (url_private, bot token, Slack's file hosts only) and a profile photo, via the intake
    votes.py    a vote from a button or a submitted form, through the one recorder
    home.py     AppHome: the Home tab (live version, canary evidence, your votes, the voters)
    web.py      the Web API client (bot token, SLACK_API_URL)
    review.py   posting unconfident answers to a review channel with the bot token (WebClient)
    blocks.py   the Block Kit messages of each command (built with slack-sdk's block models)
    replay_guard.py  ReplayGuard: each signed request accepted once, across replicas (PostgreSQL)

The adapter between Slack and the services: it may import edge, serving's values, ledger's receipt, registry's
tables and matching's rules to format them; no service package imports it.
"""
from layers.slack.delivery import SLACK_HOOK_HOSTS, deliver, response_url_allowed
from layers.slack.dispatch import FORM_FIELDS, SlackFront, SlashCommand, unwrap
from layers.slack.reply import Reply, ephemeral, error_reply, http_reply
from layers.slack.verify import SIGNATURE_HEADERS, LocalReplayGuard, SlackChecks, is_slack
from layers.slack.interactions import Action, Interaction, is_interaction, parse_interaction

__all__ = ["Action", "Interaction", "is_interaction", "parse_interaction", "FORM_FIELDS", "LocalReplayGuard", "Reply", "SIGNATURE_HEADERS", "SLACK_HOOK_HOSTS", "SlackFront",
           "SlashCommand", "SlackChecks", "deliver", "ephemeral", "error_reply", "http_reply", "is_slack", "response_url_allowed", "unwrap"]
