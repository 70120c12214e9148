"""`python -m training_job bootstrap`: the first two versions, from the dataset prefix.

v1: the backbone (imagenet, trained here on the dataset, or loaded from S3), converted to TFLite and published
    once as backbones/<fingerprint>/backbone.tflite, then a head on all training data.
v2: the same frozen backbone and 75% of the training data: a second, different head, so
    ensembles and rendezvous have two versions from the start (and share one backbone pass).
Both train on the dataset plus the ledger's consensus: `--force` replaces the base model, never the votes.
Nothing happens when the model already has versions (use --force to add two more: they are registered as
canary candidates beside the live version).
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace

from layers.config import Settings
from training_job.datasets import exists as dataset_exists, has_cues, publish_synthetic
from layers.db import Database
from layers.events import EventSink
from layers.ledger import Ledger
from layers.registry import AuditLog, Policy, Registry
from layers.store import BlobStore
from training_job import model as M
from training_job.config import BACKBONE_PARAMS, DEFAULT_DATASET, TrainConfig
from training_job.examples import agree, examples
from training_job.pipeline import Outcome, Trainer
from training_job.tracking import Tracker


def load_base(cfg: TrainConfig, settings: Settings, trainer: Trainer, train_images_fn):
    """(backbone, source, how it was trained here or None)."""
    if cfg.base == "imagenet":
        return M.build_backbone(cfg), "imagenet", None
    if cfg.base.startswith("s3://"):
        bucket, _, key = cfg.base[len("s3://"):].partition("/")
        src = BlobStore(replace(settings.s3, bucket=bucket)) if bucket != settings.s3.bucket else trainer.store
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "base.weights.h5")
            with open(path, "wb") as f:
                f.write(src.get(key).body)
            return M.build_backbone(TrainConfig(**{**cfg.params(), "base": "none"}), weights_path=path), cfg.base, None
    if cfg.base != "none":
        raise SystemExit(f"--base must be imagenet, none or s3://bucket/key, not {cfg.base!r}")
    backbone = M.build_backbone(cfg)
    x, y = train_images_fn()
    t0 = time.perf_counter()
    history = M.train_backbone(backbone, x, y, len(trainer.labels), cfg)
    source = "bootstrap: trained on the dataset (offline, no imagenet)"
    return backbone, source, {"source": source, "seconds": round(time.perf_counter() - t0, 1),
                              "params": {k: getattr(cfg, k) for k in BACKBONE_PARAMS},
                              "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.items()}}


def bootstrap(settings: Settings, cfg: TrainConfig, force: bool = False) -> list[Outcome]:
    store = BlobStore(settings.s3)
    if Registry(store).versions(cfg.model) and not force:
        print(f"[bootstrap] {cfg.model} already has versions; nothing to do (use --force)", flush=True)
        return []
    if not dataset_exists(store, cfg.dataset) or (cfg.dataset == DEFAULT_DATASET and not has_cues(store, cfg.dataset)):
        print(f"[bootstrap] generating the synthetic dataset '{cfg.dataset}' ({cfg.dataset_size} portraits)", flush=True)
        publish_synthetic(store, cfg.dataset, cfg.dataset_size, seed=cfg.seed)
    sink = EventSink(settings.kafka, client_id="training-job")
    db = Database(settings.db)
    trainer = Trainer(store, sink, cfg, Tracker.from_env(store), audit=AuditLog(db))
    snap = Ledger(db).snapshot(cfg.model)
    items, _ = trainer.dataset()
    agreed = agree(snap, {i.sha256: i.label for i in items}, cfg)
    ledger = {"watermark": snap.watermark, "votes": snap.votes, "run_id": None}
    exs = examples(items, agreed, cfg.evaluation_fraction)
    train = [e for e in exs if e.split == "train"]
    print(f"[bootstrap] {len(exs)} images: {len(train)} train, {len(exs) - len(train)} hold-out; "
          f"{len(agreed.accepted)} relabelled by the ledger's consensus ({snap.votes} votes)", flush=True)

    def train_images():
        import numpy as np
        idx = {l: i for i, l in enumerate(trainer.labels)}
        return trainer.embedder.images(train), np.array([idx[e.label] for e in train])

    backbone, source, training = load_base(cfg, settings, trainer, train_images)
    backbone.trainable = False
    info = trainer.backbones.publish(backbone, source, train, training)     # backbone.tflite, converted once
    print(f"[bootstrap] backbone {info['fingerprint']} ({source})", flush=True)
    outcomes = [trainer.train_and_publish(exs, agreed, ledger, backbone, info, parent=None, seed=cfg.seed,
                                          policy=Policy(), note="bootstrap v1: all training data")]
    subset = [e for e in exs if e.split == "holdout" or e.source == "fix" or int(e.sha256[8:16], 16) % 4 != 0]
    outcomes.append(trainer.train_and_publish(subset, agreed, ledger, backbone, info, parent=None, seed=cfg.seed + 1,
                                              policy=Policy(), note="bootstrap v2: 75% of the training data"))
    sink.close()
    db.close()
    if trainer.tracker.enabled and not trainer.tracker.flush(60):
        print("[bootstrap] MLflow did not take every run in time; the trainer logs them at its start-up", flush=True)
    return outcomes
