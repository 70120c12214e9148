"""Train -> evaluate -> convert -> gate -> publish. Shared by `bootstrap` and the online consumer.

Example:
    trainer = Trainer(store, sink, cfg)
    backbone = trainer.backbone_for(parent_meta)        # loaded once, kept warm by the consumer
    outcome = trainer.train_and_publish(exs, agreed, fix_records, backbone_info, parent=meta)

IMPORTANT: publishing is the last step and is idempotent on the data: if a committed version already holds
exactly the same training data (data_sha256), nothing new is published (the consumer then just commits).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from layers.datasets import load_manifest, manifest_key
from layers.errors import NotFound
from layers.events import EventSink, ModelEvent, now_ms
from layers.images import preprocess, sha256_hex
from layers.registry import ModelMetadata, Policy, Registry, backbone_key, embedding_key, utc_now
from layers.store import BlobStore
from layers.synth import LABELS
from training_job import model as M
from training_job.config import TrainConfig
from training_job.convert import parity, to_tflite
from training_job.data import Consensus, Example, data_manifest
from training_job.evaluate import metrics, report_png

PREPROCESSING = "layers.images.preprocess: decode, EXIF orientation, RGB, JPEG draft + bilinear resize, x/127.5-1"
IO_THREADS = 8


@dataclass
class Outcome:
    status: str                  # published | refused | duplicate
    version: int | None
    reason: str = ""
    metadata: ModelMetadata | None = None


class Trainer:
    def __init__(self, store: BlobStore, sink: EventSink | None, cfg: TrainConfig) -> None:
        self.store, self.sink, self.cfg = store, sink, cfg
        self.registry = Registry(store)
        self.labels = list(LABELS)
        self._pool = ThreadPoolExecutor(IO_THREADS)
        self._backbones: dict[str, tuple[object, dict]] = {}

    # -- events --------------------------------------------------------------------------------------
    def emit(self, event: str, version: int | None, reason: str | None = None, **details) -> None:
        record = ModelEvent(event=event, model=self.cfg.model, version=version, created_at_ms=now_ms(),
                            reason=reason, details=details)
        print(f"[event] {event} {self.cfg.model} v{version} {reason or ''}".rstrip(), flush=True)
        if self.sink is not None:
            self.sink.send(self.sink.settings.topics.model_events, record, key=self.cfg.model)

    # -- data ----------------------------------------------------------------------------------------
    def dataset(self) -> tuple[list, str]:
        items = load_manifest(self.store, self.cfg.dataset)
        return items, sha256_hex(self.store.get(manifest_key(self.cfg.dataset)).body)

    def images(self, exs: list[Example]) -> np.ndarray:
        size = self.cfg.input_size
        arrays = list(self._pool.map(lambda e: preprocess(self.store.get(e.key).body, size), exs))
        return np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.float32)

    def embeddings(self, backbone, fp: str, exs: list[Example]) -> np.ndarray:
        """Backbone embeddings, cached in S3 by (backbone fingerprint, image sha256)."""
        def cached(e: Example):
            try:
                return np.load(io.BytesIO(self.store.get(embedding_key(fp, e.sha256)).body))
            except NotFound:
                return None
        found = list(self._pool.map(cached, exs))
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            print(f"[train] embedding {len(missing)} new images ({len(exs) - len(missing)} cached)", flush=True)
            new = M.embed(backbone, self.images([exs[i] for i in missing]))

            def save(args):
                i, vec = args
                buf = io.BytesIO()
                np.save(buf, vec)
                self.store.put(embedding_key(fp, exs[i].sha256), buf.getvalue())
            list(self._pool.map(save, zip(missing, new)))
            for i, vec in zip(missing, new):
                found[i] = vec
        return np.stack(found).astype(np.float32) if found else np.zeros((0, 1), np.float32)

    # -- backbone ------------------------------------------------------------------------------------
    def save_backbone(self, backbone, source: str) -> dict:
        fp = M.fingerprint(backbone)
        key = backbone_key(fp)
        if not self.store.exists(key):
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "backbone.weights.h5")
                backbone.save_weights(path)
                self.store.put(key, open(path, "rb").read())
        info = {"fingerprint": fp, "source": source, "weights_key": key, "frozen": True}
        self._backbones[fp] = (backbone, info)
        return info

    def backbone_for(self, meta: ModelMetadata):
        """The frozen backbone a version was trained on, loaded from S3 once and kept."""
        fp = meta.backbone["fingerprint"]
        if fp not in self._backbones:
            cfg = self.cfg
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "backbone.weights.h5")
                with open(path, "wb") as f:
                    f.write(self.store.get(meta.backbone["weights_key"]).body)
                backbone = M.build_backbone(TrainConfig(**{**cfg.params(), "base": "none", "alpha": meta.architecture["alpha"],
                                                           "input_size": meta.input_size}), weights_path=path)
            backbone.trainable = False
            if M.fingerprint(backbone) != fp:
                raise RuntimeError(f"backbone {meta.backbone['weights_key']} does not match fingerprint {fp}")
            self._backbones[fp] = (backbone, meta.backbone)
        return self._backbones[fp]

    # -- the pipeline --------------------------------------------------------------------------------
    def train_and_publish(self, exs: list[Example], agreed: Consensus, fix_records: list[dict], backbone,
                          backbone_info: dict, parent: ModelMetadata | None, seed: int, policy: Policy = Policy(),
                          note: str = "") -> Outcome:
        t0 = time.perf_counter()
        cfg = TrainConfig(**{**self.cfg.params(), "seed": seed})
        dataset_items, dataset_sha = self.dataset()
        data = data_manifest(cfg.dataset, dataset_sha, exs, agreed, fix_records)
        for v in reversed(self.registry.versions(cfg.model)):
            meta = self.registry.metadata(cfg.model, v)
            if meta.data.get("data_sha256") == data["data_sha256"] and meta.params.get("seed") == seed:
                print(f"[train] v{v} already holds exactly this data; nothing to publish", flush=True)
                return Outcome("duplicate", v, f"same data as v{v}", meta)

        label_idx = {l: i for i, l in enumerate(self.labels)}
        train = [e for e in exs if e.split == "train"]
        hold = [e for e in exs if e.split == "holdout"]
        fixes = [e for e in exs if e.source == "fix"]
        fp = backbone_info["fingerprint"]
        emb = self.embeddings(backbone, fp, exs)
        index = {e.sha256: i for i, e in enumerate(exs)}
        pick = lambda part: (emb[[index[e.sha256] for e in part]], np.array([label_idx[e.label] for e in part], int))
        (xtr, ytr), (xho, yho), (xfx, yfx) = pick(train), pick(hold), pick(fixes)
        head, history = M.train_head(xtr, ytr, len(self.labels), cfg, val=(xho, yho))
        hold_m = metrics(yho, np.asarray(head.predict(xho, verbose=0)) if len(xho) else np.zeros((0, 2)), self.labels)
        fix_m = metrics(yfx, np.asarray(head.predict(xfx, verbose=0)) if len(xfx) else np.zeros((0, 2)), self.labels)
        full = M.assemble(backbone, head)
        hold_images = self.images(hold[:64])
        calib = self.images(train[:200]) if cfg.quantize == "int8" else None
        tflite = to_tflite(full, cfg.quantize, calib)
        par = parity(full, tflite, hold_images, cfg.quantize)
        print(f"[train] hold-out accuracy {hold_m['accuracy']}, fixes accuracy {fix_m['accuracy']}, "
              f"parity max|dp|={par['max_abs_diff']:.2e} top1={par['top1_agreement']:.3f}", flush=True)

        reasons = []
        if not par["ok"]:
            reasons.append(f"parity gate failed: max|dp|={par['max_abs_diff']:.3g} (tol {par['tolerance']}), "
                           f"top1 agreement {par['top1_agreement']:.3f}, finite={par['finite']}")
        acc = hold_m["accuracy"] or 0.0
        if acc < cfg.min_accuracy:
            reasons.append(f"hold-out accuracy {acc:.3f} < minimum {cfg.min_accuracy}")
        if parent is not None:
            parent_acc = parent.metrics.get("holdout", {}).get("accuracy") or 0.0
            if acc < parent_acc - cfg.max_regression:
                reasons.append(f"hold-out accuracy {acc:.3f} regressed from parent v{parent.version} ({parent_acc:.3f})")
        if reasons:
            self.emit("refused", None, "; ".join(reasons), parent=parent.version if parent else None,
                      data_sha256=data["data_sha256"], holdout_accuracy=acc, parity=par,
                      quarantined=list(agreed.quarantined))
            return Outcome("refused", None, "; ".join(reasons))

        version = self.registry.allocate(cfg.model, owner=f"training-job pid {os.getpid()}")
        buf = io.BytesIO()
        np.savez(buf, **M.head_arrays(head))
        artifacts = {
            "model.tflite": self.registry.put_artifact(cfg.model, version, "model.tflite", tflite),
            "head.npz": self.registry.put_artifact(cfg.model, version, "head.npz", buf.getvalue()),
            "data.json": self.registry.put_artifact(cfg.model, version, "data.json",
                                                    json.dumps(data, indent=1, sort_keys=True).encode()),
            "report.png": self.registry.put_artifact(cfg.model, version, "report.png", report_png(
                history, hold_m["confusion"], self.labels, f"{cfg.model} v{version}: hold-out acc {acc:.3f}")),
        }
        meta = ModelMetadata(
            model=cfg.model, version=version, parent=parent.version if parent else None, created_at=utc_now(),
            labels=self.labels, input_size=cfg.input_size, preprocessing=PREPROCESSING,
            architecture={"name": "MobileNetV2", "alpha": cfg.alpha, "pooling": "avg", "head": "Dense softmax"},
            backbone=backbone_info,
            data={k: data[k] for k in ("data_sha256", "dataset", "dataset_manifest_sha256", "counts")}
                 | {"fix_ids": sorted(f["fix_id"] for f in fix_records), "quarantined": sorted(agreed.quarantined),
                    "note": note},
            params=cfg.params(),
            metrics={"holdout": hold_m, "fixes": fix_m, "train_seconds": round(time.perf_counter() - t0, 2)},
            conversion=par,
            sizes={"model.tflite": len(tflite), "head.npz": artifacts["head.npz"]["bytes"]},
            artifacts=artifacts,
        )
        self.registry.commit(meta)
        self.emit("published", version, None, parent=meta.parent, data_sha256=data["data_sha256"],
                  holdout_accuracy=acc, fixes=len(agreed.accepted), quarantined=list(agreed.quarantined),
                  tflite_bytes=len(tflite))
        doc = self.registry.register(cfg.model, version, policy)
        self.emit("registered", version, None, route=doc.models[cfg.model].to_json())
        return Outcome("published", version, "", meta)
