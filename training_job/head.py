"""The head of a version: a Dense softmax layer on the frozen backbone's embedding.

    head = fit_head(emb, y, n_labels, cfg)         # a Head: kernel (D, n), bias (n), fitted by L-BFGS
    head.predict(emb)                              # numpy, (N, D) -> (N, n)
    head_model(head)                               # the same as a Keras model on (D,): what a version converts

Kept apart from training_job/model.py (the backbone): a change here never changes a trained backbone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from training_job.config import TrainConfig  # noqa: E402


@dataclass(frozen=True)
class Head:
    """A Dense softmax head: probabilities = softmax(embedding @ kernel + bias)."""
    kernel: np.ndarray                  # (D, n_labels) float32
    bias: np.ndarray                    # (n_labels,) float32
    iterations: int = 0

    def predict(self, emb: np.ndarray) -> np.ndarray:
        z = emb.astype(np.float32) @ self.kernel + self.bias
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"kernel": self.kernel, "bias": self.bias}


def fit_head(emb: np.ndarray, y: np.ndarray, n_labels: int, cfg: TrainConfig,
             weights: np.ndarray | None = None) -> Head:
    """Multinomial logistic regression on the embeddings (scikit-learn, L-BFGS, L2 with C = cfg.head_c): the
    same model as a Keras Dense softmax head, fitted to convergence in well under a second instead of tens
    of seconds of epochs. `weights`: per example (a person's correction counts cfg.fix_weight times).
    Deterministic for the same data."""
    from sklearn.linear_model import LogisticRegression
    present = sorted(set(int(v) for v in y))
    if len(present) < 2:
        raise ValueError(f"a head needs examples of at least two classes, got {present}")
    clf = LogisticRegression(C=cfg.head_c, max_iter=cfg.head_max_iter, tol=1e-6).fit(emb, y, sample_weight=weights)
    kernel = np.zeros((emb.shape[1], n_labels), np.float32)
    bias = np.zeros(n_labels, np.float32)
    if len(clf.classes_) == 2:           # binary: one logit for the second class, softmax([0, z]) = sigmoid(z)
        kernel[:, clf.classes_[1]], bias[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
    else:
        for row, cls in enumerate(clf.classes_):
            kernel[:, cls], bias[cls] = clf.coef_[row], clf.intercept_[row]
    absent = [c for c in range(n_labels) if c not in present]
    bias[absent] = -30.0                 # a class with no examples is never predicted
    print(f"[train] head: {len(emb)} embeddings, L-BFGS converged in {int(np.max(clf.n_iter_))} iterations",
          flush=True)
    return Head(kernel, bias, int(np.max(clf.n_iter_)))


def example_weights(y: np.ndarray, is_fix: np.ndarray, fix_weight: float) -> np.ndarray:
    """Per-example weights for the head's fit: a person's correction weighs `fix_weight` dataset images, and
    then each class is scaled back to its dataset share of the total weight. Pure.

    Why: corrections tend to come in one class (a new look that the model gets wrong is one class), and
    weighing them up would otherwise move the bias, that is the prior, for every image. Balanced, the head can
    only learn them by their features, which is what generalises; measured in bench/RESULTS.md ("Crowds")."""
    w = np.where(is_fix, float(fix_weight), 1.0)
    for k in np.unique(y):
        dataset = float(((y == k) & ~is_fix).sum())
        if dataset > 0:
            w[y == k] *= dataset / w[y == k].sum()
    return w


def head_model(head: Head) -> keras.Model:
    """The head alone as a Keras model on the embedding, for conversion (a Dense-only model converts fast)."""
    inp = keras.Input((head.kernel.shape[0],), name="embedding")
    dense = keras.layers.Dense(head.kernel.shape[1], activation="softmax", name="head")
    model = keras.Model(inp, dense(inp))
    dense.set_weights([head.kernel, head.bias])
    return model
