"""A button click's payload, parsed (layers.slack.interactions)."""
import json
from urllib.parse import urlencode

import pytest

from layers.errors import BadInput
from layers.slack.interactions import is_interaction, parse_interaction


def body(payload) -> bytes:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)}).encode()


def test_a_click_names_its_user_its_action_and_the_message():
    click = parse_interaction(body({
        "type": "block_actions", "user": {"id": "U1", "team_id": "T1"}, "trigger_id": "42.7",
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "actions": [{"action_id": "vote:non_engineer", "value": '{"sha": "ab", "model": "engineer"}', "block_id": "vote"},
                    "not an action"],
        "message": {"blocks": [{"type": "section", "block_id": "answer"}]}}))
    assert (click.type, click.principal, click.request_key) == ("block_actions", "slack:T1:U1", "trigger:42.7")
    action = click.actions[0]
    assert len(click.actions) == 1 and (action.name, action.arg) == ("vote", "non_engineer")
    assert action.data() == {"sha": "ab", "model": "engineer"} and click.message_blocks[0]["block_id"] == "answer"
    assert is_interaction(body({})) and not is_interaction(b"command=/predict&text=x")


@pytest.mark.parametrize("raw", [b"payload=not-json", b"nothing=here", body("[1, 2]")])
def test_a_payload_that_is_not_a_json_object_is_bad_input(raw):
    with pytest.raises(BadInput):
        parse_interaction(raw)


@pytest.mark.parametrize("value", ["", "[1]", "{oops"])
def test_a_button_value_that_is_not_our_json_object_is_bad_input(value):
    click = parse_interaction(body({"type": "block_actions", "actions": [{"action_id": "vote:engineer", "value": value}]}))
    if value == "":
        assert click.actions[0].data() == {}
        return
    with pytest.raises(BadInput):
        click.actions[0].data()
