"""Routing and the runtime's swap policy are pure functions: table-tested here, exercised live elsewhere."""
import pytest

from layers.registry import ModelRoute
from layers.serving.routing import choose
from layers.serving.runtime import to_unload


def test_split_follows_the_weights_and_is_sticky():
    route = ModelRoute(weights={1: 70, 2: 20, 3: 10})
    picks = [choose(route, f"user-{i}", {1, 2, 3}) for i in range(20000)]
    share = {v: picks.count(v) / len(picks) for v in (1, 2, 3)}
    assert abs(share[1] - 0.7) < 0.02 and abs(share[2] - 0.2) < 0.02 and abs(share[3] - 0.1) < 0.02
    assert all(choose(route, "user-42", {1, 2, 3}) == picks[42] for _ in range(10))


def test_all_traffic_to_the_only_live_version():
    route = ModelRoute(weights={1: 100, 2: 0}, rendezvous=[1, 2])
    assert {choose(route, f"u{i}", {1, 2}) for i in range(500)} == {1}


def test_a_version_not_ready_hands_its_share_to_the_others():
    route = ModelRoute(weights={1: 50, 2: 50})
    assert {choose(route, f"u{i}", {2}) for i in range(200)} == {2}
    assert choose(route, "u1", set()) is None
    assert choose(ModelRoute(), "u1", {1}) is None


@pytest.mark.parametrize("wanted, ready, unload", [
    ({1, 2}, {1, 2}, set()),
    ({2}, {1, 2}, {1}),            # dropped from the document: unloaded
    ({3}, {1, 2}, set()),          # v3 not ready yet (or failed): keep serving what we have
    ({3}, {1, 3}, {1}),            # once v3 is ready, v1 goes
    (set(), {1}, set()),           # an empty document never empties a serving process
    ({1}, set(), set()),
])
def test_swap_policy_never_drops_the_last_ready_versions(wanted, ready, unload):
    assert to_unload(wanted, ready) == unload
