"""Hold-out metrics: accuracy, per-class precision and recall, the confusion matrix (the report is drawn by
layers.analysis.charts.training_report)."""
from __future__ import annotations

import numpy as np


def metrics(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    pred = probs.argmax(1) if len(probs) else np.zeros(0, int)
    n = len(labels)
    cm = np.zeros((n, n), int)
    for t, p in zip(y_true, pred):
        cm[int(t), int(p)] += 1
    per_class = {}
    for i, name in enumerate(labels):
        tp = cm[i, i]
        per_class[name] = {"precision": float(tp / cm[:, i].sum()) if cm[:, i].sum() else None,
                           "recall": float(tp / cm[i, :].sum()) if cm[i, :].sum() else None,
                           "support": int(cm[i, :].sum())}
    return {"accuracy": float((pred == y_true).mean()) if len(y_true) else None, "n": int(len(y_true)),
            "per_class": per_class, "confusion": cm.tolist()}
