"""Message shortcuts on any shared image, and the modal that turns a correction into a vote.

    CLASSIFY  "Classify this image": each image of the message is scored, the answer goes to the channel
              through the shortcut's response_url (as /predict's answers do)
    CORRECT   "Correct this image": a modal (views.open with the shortcut's trigger_id, within its 3 s)
              offers the classes; its submission (view_submission, callback CORRECT) is one vote, keyed by
              the view's id (Slack may deliver a submission more than once)

Example:
    view = correction_modal(file, ("engineer", "non_engineer"), channel_id="C1")
    client.views_open(trigger_id=click.trigger_id, view=view)
    file, label, channel = submitted(click.view)               # on view_submission

The modal carries the file in its private_metadata, which only Slack returns to us, signed; the download
(layers.slack.files) still checks the host, so a forged file URL could fetch nothing but Slack's own files.
"""
from __future__ import annotations

import json

from layers.errors import BadInput
from layers.slack.blocks import PRETTY
from layers.slack.dispatch import INPUT_BLOCK
from layers.slack.interactions import SlackFile

CLASSIFY = "classify_image"
CORRECT = "correct_image"
LABEL_BLOCK, LABEL_ACTION = INPUT_BLOCK, "choose"      # the input a wrong choice is shown beside


def correction_modal(file: SlackFile, labels: tuple[str, ...], channel_id: str) -> dict:
    meta = json.dumps({"file": {"id": file.id, "name": file.name, "mimetype": file.mimetype,
                                "url_private": file.url_private}, "channel": channel_id})
    return {
        "type": "modal", "callback_id": CORRECT, "private_metadata": meta,
        "title": {"type": "plain_text", "text": "Correct the model"},
        "submit": {"type": "plain_text", "text": "Vote"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "image", "slack_file": {"id": file.id}, "alt_text": file.name or "the shared image"},
            {"type": "input", "block_id": LABEL_BLOCK, "label": {"type": "plain_text", "text": "This image is"},
             "element": {"type": "radio_buttons", "action_id": LABEL_ACTION, "options": [
                 {"text": {"type": "plain_text", "text": PRETTY.get(label, label)}, "value": label} for label in labels]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text":
                "One vote per person and image; your latest vote counts. The model learns from the consensus."}]},
        ],
    }


def submitted(view: dict) -> tuple[SlackFile, str, str]:
    """(the file, the chosen class, the channel) of a submitted correction modal."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        f = meta["file"]
        file = SlackFile(str(f["id"]), str(f.get("name", "")), str(f["mimetype"]), str(f["url_private"]))
    except (ValueError, KeyError, TypeError):
        raise BadInput("this form does not say which image it is about") from None
    choice = (((view.get("state") or {}).get("values") or {}).get(LABEL_BLOCK) or {}).get(LABEL_ACTION) or {}
    label = (choice.get("selected_option") or {}).get("value")
    if not isinstance(label, str) or not label:
        raise BadInput("choose a class")
    return file, label, str(meta.get("channel") or "")
