"""The publish gates are a pure function: table-tested."""
import pytest

from layers.registry import ModelMetadata
from training_job.config import TrainConfig
from training_job.gates import Candidate, Fitted, gate_reasons

GOOD = {"ok": True, "max_abs_diff": 1e-6, "tolerance": 1e-4, "top1_agreement": 1.0, "finite": True}
BAD = {"ok": False, "max_abs_diff": float("nan"), "tolerance": 1e-4, "top1_agreement": 0.5, "finite": False}
GOOD_PARITY = {"ok": True, "head": GOOD, "composed": GOOD}
BAD_PARITY = {"ok": False, "head": GOOD, "composed": BAD}          # e.g. a backbone.tflite that drifted


def cand(acc, parity=GOOD_PARITY):
    fitted = Fitted(head=None, holdout={"accuracy": acc}, fixes={}, hold_probs=None, hold_true=None, train=[],
                    hold=[], seconds={})
    return Candidate(fitted=fitted, tflite=b"", parity=parity)


def parent(acc):
    return ModelMetadata(model="m", version=7, parent=None, created_at="", labels=[], input_size=96, preprocessing="",
                         architecture={}, backbone={}, data={}, params={}, metrics={"holdout": {"accuracy": acc}}, conversion={})


@pytest.mark.parametrize("candidate, par, words", [
    (cand(0.90), None, []),
    (cand(0.90), parent(0.93), []),                         # within the allowed regression
    (cand(0.86), parent(0.93), ["regressed from parent v7"]),
    (cand(0.70), None, ["< minimum 0.75"]),
    (cand(0.95, BAD_PARITY), None, ["composed parity gate failed", "finite=False"]),
    (cand(0.95, {"ok": False, "head": BAD, "composed": GOOD}), None, ["head parity gate failed"]),
    (cand(0.60, BAD_PARITY), parent(0.9), ["parity", "minimum", "regressed"]),
])
def test_gates(candidate, par, words):
    reasons = " | ".join(gate_reasons(candidate, TrainConfig(), par))
    assert bool(reasons) == bool(words)
    for w in words:
        assert w in reasons


def test_the_accuracy_gates_alone_decide_before_any_conversion():
    from training_job.gates import accuracy_reasons
    assert accuracy_reasons(0.90, TrainConfig(), parent(0.93)) == []
    assert "regressed" in accuracy_reasons(0.86, TrainConfig(), parent(0.93))[0]
    assert "minimum" in accuracy_reasons(0.70, TrainConfig(), None)[0]


def test_corrections_weigh_more_but_never_move_a_class_prior():
    """A correction weighs fix_weight dataset images, and each class keeps its dataset share of the weight:
    corrections that all name one class cannot make the head say that class more often everywhere."""
    import numpy as np
    from training_job.head import example_weights
    y = np.array([0] * 60 + [1] * 40 + [1] * 5)
    fix = np.array([False] * 100 + [True] * 5)
    w = example_weights(y, fix, fix_weight=30.0)
    assert np.isclose(w[y == 0].sum(), 60) and np.isclose(w[y == 1].sum(), 40)       # the dataset's shares
    assert np.isclose(w[100] / w[60], 30.0)                                           # a correction vs an image
    assert np.allclose(w[:60], 1.0)                                                   # the other class untouched
