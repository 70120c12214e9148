"""A vote from Slack's interactive surfaces: a button under an unsure answer (a vote on the image that answer
showed, stored already), and a submitted correction of a shared image (downloaded from Slack, then stored).
Both go through the one recorder (layers.ledger.recorder): the same ledger, limits and idempotency as /fix.

Example:
    tally_reply = button_vote(recorder, "engineer", click, action)      # action_id vote:<class>
    receipt_reply = correction_vote(recorder, click, settings)          # view_submission of the modal
"""
from __future__ import annotations

from layers.config import Settings
from layers.edge.auth import slack_principal
from layers.errors import BadInput
from layers.ledger.recorder import VoteRecorder
from layers.slack.blocks import fix_message, tally_message
from layers.slack.files import download
from layers.slack.interactions import Action, Interaction
from layers.slack.reply import Reply
from layers.slack.shortcuts import submitted


def button_vote(recorder: VoteRecorder, model: str, click: Interaction, action: Action) -> Reply:
    """One click, one vote (keyed by the click's trigger id), on the image the answer showed; the message is
    updated with the running tally."""
    data = action.data()
    if data.get("model") != model or not isinstance(data.get("sha"), str) or len(data["sha"]) != 64:
        raise BadInput("this button is not a vote on this model's images")
    principal = slack_principal(click.team_id, click.user_id)
    label = recorder.admit(principal, action.arg)
    receipt = recorder.record_stored(data["sha"], label, principal, source="button", key=click.request_key)
    return tally_message(click.message_blocks, recorder.tally(receipt), receipt)


def correction_vote(recorder: VoteRecorder, click: Interaction, settings: Settings) -> Reply:
    """A submitted correction: the class checked first (a wrong one is shown in the modal), then the image
    fetched from Slack and the vote recorded once per submitted view."""
    file, label, _ = submitted(click.view)
    principal = slack_principal(click.team_id, click.user_id)
    label = recorder.admit(principal, label)
    return fix_message(recorder.record(download(file, settings), label, principal, source="slack",
                                       key=click.request_key))
