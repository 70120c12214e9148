"""The publish gates: what a trained head must pass before it becomes a version (pure functions, no
TensorFlow: the trainer's pipeline fits and converts, this module judges).

    Fitted     a fitted head and its metrics, before conversion
    Candidate  the same head converted to TFLite, with its parity
    accuracy_reasons(accuracy, cfg, parent)   the hold-out gates (run first: they need no conversion)
    gate_reasons(candidate, cfg, parent)      parity, then accuracy; empty: it may be published
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from layers.registry import ModelMetadata
from training_job.config import TrainConfig

if TYPE_CHECKING:
    from training_job.head import Head


@dataclass
class Fitted:
    """A fitted head and its metrics, before conversion."""
    head: Head
    holdout: dict
    fixes: dict
    hold_probs: np.ndarray
    hold_true: np.ndarray
    train: list
    hold: list
    seconds: dict
    evaluation: dict = field(default_factory=dict)   # on evaluation-split votes it never trained on, with a CI
    parent_prequential: dict | None = None           # the parent on the votes that came after its watermark
    ceiling: dict | None = None      # what a classifier on the generator's cues gets on this split (ceiling.py)

    @property
    def accuracy(self) -> float:
        return self.holdout["accuracy"] or 0.0


@dataclass
class Candidate:
    """A fitted head converted to TFLite, with its parity, not judged yet."""
    fitted: Fitted
    tflite: bytes
    parity: dict
    seconds: dict = field(default_factory=dict)      # per stage: embeddings, head, convert, parity

    @property
    def holdout(self) -> dict:
        return self.fitted.holdout

    @property
    def fixes(self) -> dict:
        return self.fitted.fixes

    @property
    def accuracy(self) -> float:
        return self.fitted.accuracy


def accuracy_reasons(accuracy: float, cfg: TrainConfig, parent: ModelMetadata | None) -> list[str]:
    """The accuracy gates alone (they need no conversion, so they run first). Pure."""
    reasons = []
    if accuracy < cfg.min_accuracy:
        reasons.append(f"hold-out accuracy {accuracy:.3f} < minimum {cfg.min_accuracy}")
    if parent is not None:
        parent_acc = parent.metrics.get("holdout", {}).get("accuracy") or 0.0
        if accuracy < parent_acc - cfg.max_regression:
            reasons.append(f"hold-out accuracy {accuracy:.3f} regressed from parent v{parent.version} ({parent_acc:.3f})")
    return reasons


def gate_reasons(cand: Candidate, cfg: TrainConfig, parent: ModelMetadata | None) -> list[str]:
    """Why this candidate must not be published (empty: it may): parity, then accuracy. Pure."""
    reasons = []
    for part in ("head", "composed"):
        par = cand.parity[part]
        if not par["ok"]:
            reasons.append(f"{part} parity gate failed: max|dp|={par['max_abs_diff']:.3g} (tol {par['tolerance']}), "
                           f"top1 agreement {par['top1_agreement']:.3f}, finite={par['finite']}")
    return reasons + accuracy_reasons(cand.accuracy, cfg, parent)
