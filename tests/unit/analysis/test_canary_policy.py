"""The canary policy's pure rules (layers.analysis.canary): the decision on constructed evidence, supersession,
and which version becomes the canary."""
from __future__ import annotations

import dataclasses

import pytest

from layers.analysis.canary import AutoPromotion, current_canary, judge, leaning, next_canary, supersedes
from layers.analysis.paired import evidence
from layers.registry import ModelRoute

POLICY = AutoPromotion(enabled=True, canary_percent=20, min_samples=4)
SUPERSEDE = AutoPromotion(enabled=True, min_samples=8)


@pytest.mark.parametrize("pairs, generation, newer, decision, alpha", [
    ([(True, False)] * 8, 0, None, "promote", 0.025),         # the first canary spends half of alpha: 8 pairs
    ([(True, False)] * 7, 0, None, "wait", 0.025),            # ...7 are not enough (LR 31.9 < 40)
    ([(True, False)] * 8, 1, None, "wait", 0.0125),           # the second spends a quarter: 8 are not enough
    ([(True, False)] * 9, 1, None, "promote", 0.0125),
    ([(True, False)] * 3, 0, None, "wait", 0.025),            # too few images to promote, however good
    ([(True, False)] * 2 + [(True, True)] * 6, 0, 9, "rollback", 0.025),     # undecided after 8: superseded
    ([(True, False)] * 2 + [(True, True)] * 2, 0, 9, "wait", 0.025),         # ...but not before min_samples
    ([(True, False)] * 5 + [(True, True)] * 3, 0, 9, "wait", 0.025),         # ...nor while leaning its way (LR 10.5)
    ([(True, False)] * 5 + [(False, True)] + [(True, True)] * 2, 0, 9, "rollback", 0.025),   # LR 2.9: superseded
    ([(False, True)] * 8, 0, None, "rollback", 0.025),        # worse
])
def test_judge(pairs, generation, newer, decision, alpha):
    got, why, tested_at = judge(SUPERSEDE, evidence(pairs), generation, None, False, newer)
    assert (got, tested_at) == (decision, alpha), why
    if newer is not None and got == "rollback":
        assert why.startswith(f"superseded by v{newer}")


def test_a_newer_version_supersedes_only_with_twice_the_voted_images():
    assert supersedes(20, 10) and supersedes(1, 0) and not supersedes(19, 10) and not supersedes(0, 0)


def test_the_next_canary_is_the_newest_servable_mirrored_version_never_a_rejected_one():
    route = ModelRoute(weights={3: 100, 4: 0, 5: 0, 6: 0}, mirror=[5, 6], auto=dataclasses.replace(POLICY, rejected=[6]))
    assert next_canary(route, lambda v: True) == 5
    assert next_canary(route, lambda v: v != 5) is None            # 5 failed its gates
    assert current_canary(route) is None
    route.weights[5] = 20
    assert current_canary(route) == 5 and next_canary(route, lambda v: True) is None
    assert next_canary(ModelRoute(weights={7: 100}, mirror=[2]), lambda v: True) is None   # older than live


def test_leaning_is_halfway_to_a_promotion_on_the_log_scale():
    alpha = 0.025                                              # sqrt(1 / 0.025) = 6.32
    assert leaning(evidence([(True, False)] * 5 + [(True, True)] * 3), alpha)          # LR 10.5
    assert not leaning(evidence([(True, False)] * 4), alpha)                           # LR 6.2
    assert not leaning(evidence([]), alpha)


def test_the_policy_value_round_trips_through_the_control_document():
    policy = AutoPromotion(enabled=True, canary_percent=15, min_samples=6, alpha=0.01, max_samples=90,
                           max_age_s=600, rejected=[4, 2])
    assert AutoPromotion.from_json(policy.to_json()) == dataclasses.replace(policy, rejected=[2, 4])   # sorted
    assert policy.to_json()["rejected"] == [2, 4]
    assert AutoPromotion.from_json(None) == AutoPromotion()                 # a document without one: off
    assert AutoPromotion.from_json({"margin": 0.05}).enabled is False       # an old document's field is ignored
