"""Publishing a version, and registering and announcing it: the last stages of a training run, which the
reconciler (training_job.reconcile) finishes when a crash interrupted them.

Example:
    meta = publish_version(registry, emit, candidate, cfg, labels, data, agreed, backbone_info, parent, note, 12.3)
    register_and_announce(registry, emit, "engineer", meta.version, Policy(), run_id=7,
                          registered=lambda: progress("registered", meta.version))

Stages: metadata.json written (the version exists: "published") -> the control document names it
("registered") -> its model-event acknowledged ("announced").
"""
from __future__ import annotations

import io
import json
import os
from typing import Callable

import numpy as np

from layers.analysis.charts import training_report
from layers.ledger import Consensus
from layers.registry import ControlDoc, ModelMetadata, Policy, Registry, utc_now
from training_job.config import TrainConfig
from training_job.gates import Candidate

PREPROCESSING = "layers.images.preprocess: decode, EXIF orientation, RGB, JPEG draft + bilinear resize, x/127.5-1"


def publish_version(registry: Registry, emit: Callable[..., None], cand: Candidate, cfg: TrainConfig,
                    labels: list[str], data: dict, agreed: Consensus, backbone_info: dict,
                    parent: ModelMetadata | None, note: str, seconds: float) -> ModelMetadata:
    """A new, immutable version: its artifacts, then its metadata.json (committed last), then `published`."""
    version = registry.allocate(cfg.model, owner=f"training-job pid {os.getpid()}")
    buf = io.BytesIO()
    np.savez(buf, **cand.fitted.head.arrays())
    fitted = cand.fitted
    confidence = fitted.hold_probs.max(axis=1) if len(fitted.hold_probs) else np.zeros(0)
    report = training_report(fitted.holdout["confusion"], labels, confidence.tolist(),
                             (fitted.hold_probs.argmax(axis=1) == fitted.hold_true).tolist(),
                             f"{cfg.model} v{version}: hold-out accuracy {cand.accuracy:.3f}")
    put = lambda name, body: registry.put_artifact(cfg.model, version, name, body)
    artifacts = {
        "head.tflite": put("head.tflite", cand.tflite),
        "head.npz": put("head.npz", buf.getvalue()),
        "data.json": put("data.json", json.dumps(data, indent=1, sort_keys=True).encode()),
        "report.png": put("report.png", report),
    }
    meta = ModelMetadata(
        model=cfg.model, version=version, parent=parent.version if parent else None, created_at=utc_now(),
        labels=labels, input_size=cfg.input_size, preprocessing=PREPROCESSING,
        architecture={"name": "MobileNetV2", "alpha": cfg.alpha, "pooling": "avg",
                      "head": "Dense softmax (multinomial logistic regression, L-BFGS)"},
        backbone=backbone_info,
        data={k: data[k] for k in ("data_sha256", "dataset", "dataset_manifest_sha256", "counts", "ledger")}
             | {"quarantined": sorted(agreed.quarantined), "note": note},
        params=cfg.params(),
        metrics={"holdout": cand.holdout, "fixes": cand.fixes, "evaluation": fitted.evaluation,
                 "parent_prequential": fitted.parent_prequential, "ceiling": fitted.ceiling,
                 "train_seconds": round(seconds, 2),
                 "stage_seconds": cand.seconds, "head_iterations": fitted.head.iterations},
        conversion=cand.parity,
        sizes={"head.tflite": len(cand.tflite), "backbone.tflite": backbone_info["tflite"]["bytes"],
               "head.npz": artifacts["head.npz"]["bytes"]},
        artifacts=artifacts,
    )
    registry.commit(meta)
    emit("published", version, None, parent=meta.parent, data_sha256=data["data_sha256"],
         holdout_accuracy=cand.accuracy, fixes=len(agreed.accepted), quarantined=list(agreed.quarantined),
         head_bytes=len(cand.tflite), run_id=data["ledger"].get("run_id"))
    return meta


def register_and_announce(registry: Registry, emit: Callable[..., None], model: str, version: int, policy: Policy,
                          run_id: int | None, reason: str | None = None, actor: str = "training-job",
                          registered: Callable[[], None] | None = None) -> ControlDoc:
    """Name the version in the control document (the canary candidate; idempotent), then announce it on
    model-events. `registered` runs between the two (the run's row, a crash point)."""
    doc = registry.register(model, version, policy, actor=actor)
    if registered is not None:
        registered()
    emit("registered", version, reason, route=doc.models[model].to_json(), run_id=run_id)
    return doc
