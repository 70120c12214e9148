"""`python -m training_job export`: one version as a single, portable model.tflite (image -> probabilities).

    python -m training_job export --model engineer --version 3 --out engineer-v3.tflite

Serving runs a version as its head on the shared backbone (layers.serving.loader). Whoever wants one file
(another runtime, a phone) gets it here: the stored backbone weights and the version's head, assembled in
Keras, converted, and checked against the composed path that serving runs (same probabilities within the
fp32 parity tolerance, same top class) on the dataset's hold-out images. Nothing is written if it differs.
"""
from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np

from layers.config import Settings
from layers.images import preprocess
from layers.registry import Registry
from layers.serving.litert import LiteModel
from layers.serving.loader import Loader
from layers.store import BlobStore
from training_job import model as M
from training_job.head import Head
from training_job.config import TrainConfig
from training_job.convert import agreement, to_tflite
from training_job.datasets import load_manifest


def export(settings: Settings, cfg: TrainConfig, version: int, out: Path, check_images: int = 32) -> dict:
    from training_job.pipeline import Trainer
    store = BlobStore(settings.s3)
    registry = Registry(store)
    meta = registry.metadata(cfg.model, version)
    trainer = Trainer(store, None, cfg)
    backbone, _ = trainer.backbones.for_version(meta)
    arrays = np.load(io.BytesIO(registry.fetch_artifact(cfg.model, version, "head.npz", meta)))
    tflite = to_tflite(M.assemble(backbone, Head(arrays["kernel"], arrays["bias"])), "fp32")
    hold = [i for i in load_manifest(store, meta.data.get("dataset") or cfg.dataset) if i.split == "holdout"]
    x = np.stack([preprocess(store.get(i.key).body, meta.input_size) for i in hold[:check_images]])
    with tempfile.TemporaryDirectory() as cache:
        served = Loader(registry, cache).load(cfg.model, version)
        check = agreement(served.predict(x), LiteModel(tflite).predict(x), "fp32")
    if not check["ok"]:
        raise SystemExit(f"the exported model differs from what serving runs: {json.dumps(check)}")
    out.write_bytes(tflite)
    return {"model": cfg.model, "version": version, "out": str(out), "bytes": len(tflite), "parity": check}
