"""Keras side of the model: a frozen MobileNetV2 backbone, global pooling, and a Dense softmax head.

    backbone = build_backbone(cfg)                 # weights: imagenet | trained here (bootstrap) | from S3
    tuned = tune_backbone(backbone, x, y, w, head, cfg)   # a new backbone: the root fine-tuned on corrections
    emb = embed(backbone, x)                       # (N, D) float32: what the head is trained on
    assemble(backbone, head)                       # image -> probabilities: the portable single model
                                                   # (the head itself: training_job/head.py)

The backbone's fingerprint (sha256 of its architecture and weights) keys the embedding cache and tells
which versions share a backbone.
"""
from __future__ import annotations

import hashlib
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from training_job.config import TrainConfig  # noqa: E402
from training_job.head import Head  # noqa: E402


def build_backbone(cfg: TrainConfig, weights_path: str | None = None) -> keras.Model:
    reproducible(cfg.seed)                     # a backbone trained here starts from weights drawn now
    weights = "imagenet" if cfg.base == "imagenet" else None
    base = keras.applications.MobileNetV2(input_shape=(cfg.input_size, cfg.input_size, 3), alpha=cfg.alpha,
                                          include_top=False, weights=weights, pooling="avg")
    if weights_path:
        base.load_weights(weights_path)
    return base


def like(model: keras.Model, weights_path: str) -> keras.Model:
    """A model of `model`'s architecture with the weights in `weights_path` (a tuned backbone's root)."""
    copy = keras.models.clone_model(model)
    copy.load_weights(weights_path)
    return copy


def fingerprint(backbone: keras.Model) -> str:
    """sha256 over every weight's shape and values, in layer order (layer names are left out: Keras
    renames layers when a model is built twice in one process)."""
    h = hashlib.sha256(f"MobileNetV2 {backbone.input_shape} -> {backbone.output_shape}".encode())
    for w in backbone.get_weights():
        h.update(str(w.shape).encode())
        h.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return h.hexdigest()[:32]


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch: how far, the training loss and accuracy, and the time left at the last epoch's pace
    (the first epoch also traces the graph, so it is slower than the rest)."""
    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs, self.last = epochs, time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs, done, now = logs or {}, epoch + 1, time.perf_counter()
        took, self.last = now - self.last, now
        print(f"[train] backbone epoch {done}/{self.epochs}: loss {logs.get('loss', float('nan')):.3f}, "
              f"accuracy {logs.get('accuracy', float('nan')):.3f} ({took:.1f} s; about "
              f"{took * (self.epochs - done):.0f} s left)", flush=True)


def reproducible(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and use TensorFlow's deterministic kernels: the same seed gives the
    same weights on the same machine (another CPU, thread count or TensorFlow build may round differently)."""
    import tensorflow as tf
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_backbone(backbone: keras.Model, x: np.ndarray, y: np.ndarray, n_labels: int, cfg: TrainConfig) -> dict:
    """Offline bootstrap: train the whole network on the dataset, so the embeddings mean something.
    BatchNorm momentum is lowered so the moving statistics converge within a short run (with MobileNetV2's
    0.999 they would stay near their (0, 1) start and inference would collapse; see ML-NOTES)."""
    reproducible(cfg.seed)                     # shuffles, augmentation, dropout
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    backbone.trainable = True
    # augmentation lives only in this training graph, never in the backbone that gets converted
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                                keras.layers.RandomTranslation(0.06, 0.06, fill_mode="nearest"),
                                keras.layers.RandomZoom(0.1, fill_mode="nearest")], name="augment")
    inp = keras.Input(backbone.input_shape[1:])
    out = keras.layers.Dense(n_labels, activation="softmax")(keras.layers.Dropout(0.3)(backbone(augment(inp))))
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(step_size(cfg, len(x))), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    print(f"[train] backbone: {len(x)} images, {cfg.backbone_epochs} epochs", flush=True)
    hist = model.fit(x, y, epochs=cfg.backbone_epochs, batch_size=cfg.batch_size, shuffle=True, verbose=0,
                     callbacks=[EpochProgress(cfg.backbone_epochs)])
    backbone.trainable = False
    return hist.history


def step_size(cfg: TrainConfig, n: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The bootstrap's Adam step: constant, or a linear warm-up over cfg.warmup_epochs then a cosine to 0."""
    if cfg.warmup_epochs <= 0:
        return cfg.learning_rate
    per_epoch = -(-n // cfg.batch_size)
    warmup = per_epoch * min(cfg.warmup_epochs, cfg.backbone_epochs)
    return keras.optimizers.schedules.CosineDecay(0.0, max(1, per_epoch * cfg.backbone_epochs - warmup),
                                                  warmup_target=cfg.learning_rate, warmup_steps=warmup)


def tune_backbone(root: keras.Model, x: np.ndarray, y: np.ndarray, weights: np.ndarray, head: Head,
                  cfg: TrainConfig) -> keras.Model:
    """A copy of `root`, fine-tuned end to end for cfg.tune_epochs on images `x` with labels `y` and per-example
    `weights`, under a Dense softmax starting from `head`. `root` is left as it was.

    BatchNorm layers stay in inference mode with frozen statistics: a few hundred steps would otherwise pull
    the moving means towards the batch and change every answer. Deterministic for the same inputs and seed."""
    reproducible(cfg.seed)
    tuned = keras.models.clone_model(root)
    tuned.set_weights(root.get_weights())
    for layer in tuned.layers:            # one by one: a clone keeps each layer's flag, and the model's is a no-op
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    inp = keras.Input(tuned.input_shape[1:])
    dense = keras.layers.Dense(head.kernel.shape[1], activation="softmax")
    model = keras.Model(inp, dense(tuned(inp, training=False)))
    dense.set_weights([head.kernel, head.bias])
    model.compile(optimizer=keras.optimizers.Adam(cfg.tune_learning_rate), loss="sparse_categorical_crossentropy")
    t0 = time.perf_counter()
    model.fit(x, y, sample_weight=weights * (len(weights) / weights.sum()), epochs=cfg.tune_epochs,
              batch_size=cfg.batch_size, shuffle=True, verbose=0)
    print(f"[train] backbone fine-tuned on {len(x)} images, {cfg.tune_epochs} epochs "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)
    for layer in tuned.layers:
        layer.trainable = False
    return tuned


def embed(backbone: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, backbone.output_shape[-1]), np.float32)
    return np.asarray(backbone.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def assemble(backbone: keras.Model, head: Head) -> keras.Model:
    """One model from image to probabilities, sharing the backbone's layers (the portable form)."""
    dense = keras.layers.Dense(head.kernel.shape[1], activation="softmax", name="head")
    out = dense(backbone.output)
    dense.set_weights([head.kernel, head.bias])
    return keras.Model(backbone.input, out)
