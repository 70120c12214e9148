"""The /models verbs parsed from Slack's text and from the JSON API (layers.registry.commands), and the tables."""
import pytest

from layers.errors import BadInput
from layers.registry.commands import Command, from_api, from_text, table


@pytest.mark.parametrize("text, command", [
    ("list", Command("list")),
    ("show 3", Command("show", {"version": 3})),
    ("compare 1 3", Command("compare", {"a": 1, "b": 3})),
    ("canary 4 10", Command("canary", {"version": 4, "percent": 10})),
    ("mirror 4 off", Command("mirror", {"version": 4, "on": False})),
    ("history before=9", Command("history", {"before": 9})),
    ("PROMOTE 5", Command("promote", {"version": 5})),
    ("deploy 5", Command("promote", {"version": 5})),               # the seed's word
    ("ensemble 1 3", Command("ensemble", {"versions": [1, 3]})),
])
def test_slack_text_becomes_a_command(text, command):
    assert from_text(text) == command


@pytest.mark.parametrize("text", ["", "help", "show", "canary 4", "history since=1", "route", "frobnicate 1", "auto",
                                  "policy"])
def test_wrong_usage_is_bad_input_with_the_usage(text):
    with pytest.raises(BadInput) as err:
        from_text(text)
    assert "Usage" in err.value.message


def test_a_version_that_is_not_a_number_says_so():
    with pytest.raises(BadInput) as err:
        from_text("show x")
    assert "must be a number" in err.value.message


def test_the_api_names_the_same_verbs():
    assert from_api("GET", "/", {}) == Command("list")
    assert from_api("GET", "/3", {}) == Command("show", {"version": 3})
    assert from_api("POST", "/promote", {"version": 3}) == Command("promote", {"version": 3})
    assert from_api("GET", "/compare", {}, {"a": "1", "b": "2"}) == Command("compare", {"a": 1, "b": 2})
    assert from_api("POST", "/promote", {"version": 3}).edits and not from_api("GET", "/", {}).edits
    with pytest.raises(BadInput):
        from_api("POST", "/promote", {"version": "three"})


def test_a_table_has_a_header_and_one_row_per_version():
    rows = [{"version": 1, "role": "live", "weight": 100, "accuracy": 0.93, "ceiling": 0.98, "fix_accuracy": None,
             "fixes": 0, "parent": None, "created_at": "2026-12-02T21:00:00Z"}]
    lines = table(rows).splitlines()
    assert lines[0].split()[:3] == ["version", "role", "weight"] and lines[-1].split()[:2] == ["1", "live"]
