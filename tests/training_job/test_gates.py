"""The publish gates are a pure function: table-tested."""
import pytest

from layers.registry import ModelMetadata
from training_job.config import TrainConfig
from training_job.pipeline import Candidate, gate_reasons

GOOD_PARITY = {"ok": True, "max_abs_diff": 1e-6, "tolerance": 1e-4, "top1_agreement": 1.0, "finite": True}
BAD_PARITY = {"ok": False, "max_abs_diff": float("nan"), "tolerance": 1e-4, "top1_agreement": 0.5, "finite": False}


def cand(acc, parity=GOOD_PARITY):
    return Candidate(head=None, history={}, holdout={"accuracy": acc}, fixes={}, tflite=b"", parity=parity)


def parent(acc):
    return ModelMetadata(model="m", version=7, parent=None, created_at="", labels=[], input_size=96, preprocessing="",
                         architecture={}, backbone={}, data={}, params={}, metrics={"holdout": {"accuracy": acc}}, conversion={})


@pytest.mark.parametrize("candidate, par, words", [
    (cand(0.90), None, []),
    (cand(0.90), parent(0.93), []),                         # within the allowed regression
    (cand(0.86), parent(0.93), ["regressed from parent v7"]),
    (cand(0.70), None, ["< minimum 0.75"]),
    (cand(0.95, BAD_PARITY), None, ["parity gate failed", "finite=False"]),
    (cand(0.60, BAD_PARITY), parent(0.9), ["parity", "minimum", "regressed"]),
])
def test_gates(candidate, par, words):
    reasons = " | ".join(gate_reasons(candidate, TrainConfig(), par))
    assert bool(reasons) == bool(words)
    for w in words:
        assert w in reasons


def test_the_accuracy_gates_alone_decide_before_any_conversion():
    from training_job.pipeline import accuracy_reasons
    assert accuracy_reasons(0.90, TrainConfig(), parent(0.93)) == []
    assert "regressed" in accuracy_reasons(0.86, TrainConfig(), parent(0.93))[0]
    assert "minimum" in accuracy_reasons(0.70, TrainConfig(), None)[0]
