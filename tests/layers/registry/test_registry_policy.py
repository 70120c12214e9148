"""Registration and retention: the live version, the canary candidate, and a bounded serving set."""
from __future__ import annotations

import pytest

from layers.registry import ModelRoute, Policy, retain
from tests.conftest import audited


@pytest.mark.parametrize("weights, live", [({}, None), ({1: 0}, None), ({1: 100, 2: 0}, 1), ({1: 10, 2: 90}, 2),
                                           ({1: 50, 2: 50}, 2), ({3: 50, 2: 50}, 3)])
def test_the_live_version_has_the_most_traffic(weights, live):
    assert ModelRoute(weights=weights).live == live


@pytest.mark.parametrize("route, keep, deployed", [
    (ModelRoute(weights={1: 100}, rendezvous=[1, 2, 3, 4, 5, 6], mirror=[6]), 3, [1, 4, 5, 6]),
    (ModelRoute(weights={1: 90, 2: 10, 3: 0}, rendezvous=[1, 2, 3, 4, 5]), 2, [1, 2, 4, 5]),
    (ModelRoute(weights={5: 100}, rendezvous=[1, 2, 3], mirror=[1]), 0, [5]),
    (ModelRoute(weights={1: 100}, rendezvous=[1]), 3, [1]),
])
def test_retention_keeps_the_live_versions_and_the_newest_others(route, keep, deployed):
    kept = retain(route, keep)
    assert kept.deployed == deployed
    assert set(kept.mirror) <= set(deployed) and set(kept.weights) <= set(deployed)
    assert {v: w for v, w in kept.weights.items() if w} == {v: w for v, w in route.weights.items() if w}


def test_registration_is_bounded_and_idempotent(store, uid):
    reg, model = audited(store), f"policy-{uid}"
    for v in range(1, 9):
        reg.register(model, v, Policy(keep_recent=3))
    doc, _ = reg.control()
    route = doc.models[model]
    assert route.weights[1] == 100 and route.live == 1
    assert route.deployed == [1, 6, 7, 8] and route.mirror == [8] and route.registered_through == 8
    audited_before = reg.trail().page(model, limit=100)
    reg.register(model, 3, Policy())                      # retired: never comes back
    reg.register(model, 8, Policy())                      # already registered
    # nothing written for this model (the document's revision may move meanwhile: other tests register theirs)
    assert reg.control()[0].models[model].to_json() == route.to_json()
    assert reg.trail().page(model, limit=100) == audited_before
    assert ModelRoute.from_json({"weights": {"2": 100}, "rendezvous": [2, 5]}).registered_through == 5
