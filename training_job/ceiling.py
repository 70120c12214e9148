"""The ceiling: the best hold-out accuracy this data allows, measured without pixels.

The synthetic generator (portraits/synth.py) records the cues it drew for each portrait (glasses, a tie, a
laptop...), and the label follows from them up to the deliberately ambiguous cases (an engineer and a
non-engineer can be drawn with the very same cues). A classifier that sees those cues, trained and scored on
exactly the model's split, shows how far the model is from what its data allows: the model has to find the
cues in 96 px images; this classifier is handed them.

    ceiling(train_items, holdout_items)    # {"accuracy", "n", "method"}, or None when the data has no cues

The classifier is a logistic regression on the cues' indicators (scikit-learn, deterministic). On the default
synthetic dataset it matches the best possible rule, the majority label of each cue set (see bench/RESULTS.md).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from portraits.synth import ENGINEER_CUES, OTHER_CUES

CUES = ENGINEER_CUES + OTHER_CUES
METHOD = "logistic regression on the generator's cue indicators (same split as the model)"


def features(cues: Sequence[Sequence[str]]) -> np.ndarray:
    return np.array([[c in set(row) for c in CUES] for row in cues], dtype=np.float32).reshape(len(cues), len(CUES))


def ceiling(train: Sequence[tuple[Sequence[str], str]], holdout: Sequence[tuple[Sequence[str], str]]) -> dict | None:
    """(cues, label) pairs of the model's training and hold-out images that have cues. None when there are none
    (photos uploaded by hand) or only one class to learn."""
    if not train or not holdout or len({label for _, label in train}) < 2:
        return None
    from sklearn.linear_model import LogisticRegression
    labels = sorted({label for _, label in train})
    y = np.array([labels.index(label) for _, label in train])
    clf = LogisticRegression(C=100.0, max_iter=1000).fit(features([c for c, _ in train]), y)
    pred = clf.predict(features([c for c, _ in holdout]))
    truth = [label for _, label in holdout]
    correct = sum(labels[p] == t for p, t in zip(pred, truth))
    return {"accuracy": round(correct / len(holdout), 4), "n": len(holdout), "method": METHOD}
