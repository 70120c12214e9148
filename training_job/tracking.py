"""Experiment tracking: every training run, logged to an MLflow tracking server, when one is configured.

    tracker = Tracker.from_env(store)          # MLFLOW_TRACKING_URI; unset: a tracker that logs nothing
    tracker.published(meta)                    # a version: its run, on the tracker's own thread
    tracker.refused(model, params, metrics, reasons)
    tracker.backfill(model)                    # every committed version (and backbone) without a run gets one
    tracker.flush(timeout_s)                   # wait for what is queued (the CLI does before it exits)

The registry in S3 stays the source of truth for serving; MLflow is where people browse and compare runs.
Logging never delays or fails a training run: it runs on one background thread, a server that is down costs a
log line and a count (afterdark_tracking_failures_total), and `backfill` (the learner runs it with its
reconciler: at start-up, then every minute) logs later whatever was missed. Runs are found again by their tags
(afterdark.model and afterdark.version, or afterdark.backbone), so a version never gets two runs.

One experiment per model, "afterdark-<model>". What a run holds is written down in docs/formats.md ("MLflow").
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable

from layers import metrics as M
from layers.registry import ModelMetadata, Registry, artifact_key
from layers.store import BlobStore

EXPERIMENT_PREFIX = "afterdark-"
VERSION_TAG, MODEL_TAG, BACKBONE_TAG, OUTCOME_TAG = ("afterdark.version", "afterdark.model", "afterdark.backbone",
                                                     "afterdark.outcome")


def flatten(prefix: str, value: Any) -> Iterable[tuple[str, float]]:
    """The numbers in a nested dict as (dotted key, value); lists and None are left out."""
    if isinstance(value, bool):
        yield prefix, float(value)
    elif isinstance(value, (int, float)):
        yield prefix, float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(f"{prefix}.{k}" if prefix else str(k), v)


def version_metrics(meta: ModelMetadata) -> dict[str, float]:
    """What a version's run reports: hold-out and fix metrics, stage timings, the gates' measurements."""
    m = meta.metrics
    out = dict(flatten("holdout", {k: v for k, v in m.get("holdout", {}).items() if k != "confusion"}))
    out.update(flatten("fixes", {k: v for k, v in m.get("fixes", {}).items() if k != "confusion"}))
    for honest in ("evaluation", "parent_prequential"):         # on votes it never trained on, with a 95% CI
        fig = m.get(honest) or {}
        out.update(flatten(honest, {"n": fig.get("n"), "accuracy": fig.get("accuracy"),
                                    "ci95_low": (fig.get("ci95") or [None])[0], "ci95_high": (fig.get("ci95") or [None, None])[1]}))
    out.update(flatten("seconds", {"train": m.get("train_seconds"), **m.get("stage_seconds", {})}))
    out.update(flatten("ceiling", m.get("ceiling", {})))
    if "head_iterations" in m:
        out["head.iterations"] = float(m["head_iterations"])
    for part in ("head", "composed"):
        par = (meta.conversion or {}).get(part) or {}
        out.update(flatten(f"gate.{part}_parity", {k: par.get(k) for k in ("max_abs_diff", "top1_agreement", "ok")}))
    return out


class Tracker:
    def __init__(self, uri: str | None, store: BlobStore | None = None, timeout_s: float = 30.0) -> None:
        self.uri = uri or None
        self.registry = Registry(store) if store is not None else None
        self._store = store
        self._client = None
        self._experiments: dict[str, str] = {}
        self._backbones_logged: set[str] = set()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mlflow") if self.uri else None
        self._pending: list[Future] = []
        self._lock = threading.Lock()
        # One try per call, bounded: a down server must not hold the tracker's thread for long. (A server that
        # was just started answers its first artifact upload only after it has imported its S3 client: more
        # than 10 s on 2 busy cores, measured.)
        # MLflow's telemetry is off: it would call out of the machine, and its thread sets and unsets an
        # environment variable that a concurrent request reads (a KeyError lost the bootstrap's backbone run).
        if self.uri:
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(timeout_s)))

    @classmethod
    def from_env(cls, store: BlobStore | None) -> "Tracker":
        return cls(os.environ.get("MLFLOW_TRACKING_URI"), store)

    @property
    def enabled(self) -> bool:
        return self.uri is not None

    # -- what the trainer calls (all return at once) ----------------------------------------------------
    def published(self, meta: ModelMetadata) -> None:
        self._submit(f"{meta.model} v{meta.version}", self._log_version, meta)

    def refused(self, model: str, params: dict, metrics: dict, reasons: list[str]) -> None:
        self._submit(f"{model} refused run", self._log_refused, model, params, metrics, reasons)

    def backbone(self, model: str, manifest: dict) -> None:
        self._submit(f"backbone {manifest.get('fingerprint')}", self._log_backbone, model, manifest)

    def backfill(self, model: str) -> None:
        self._submit(f"{model} backfill", self._backfill, model)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait for every queued log call; False when some did not finish in time."""
        with self._lock:
            pending, self._pending = self._pending, []
        deadline = time.monotonic() + timeout_s
        for f in pending:
            try:
                f.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                return False
        return True

    # -- the background side ---------------------------------------------------------------------------
    def _submit(self, what: str, fn, *args) -> None:
        if self._pool is None:
            return

        def run():
            try:
                fn(*args)
            except Exception as err:          # never the trainer's problem: counted, said, backfilled later
                M.TRACKING_FAILURES.inc()
                print(f"[tracking] could not log {what} to MLflow at {self.uri}: {type(err).__name__}: {err}",
                      file=sys.stderr, flush=True)

        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [self._pool.submit(run)]

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient         # imported on first use: the trainer starts without it
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def experiment(self, model: str) -> str:
        name = EXPERIMENT_PREFIX + model
        if name not in self._experiments:
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                try:
                    self._experiments[name] = self.client.create_experiment(name, tags={MODEL_TAG: model})
                except Exception:                  # another trainer created it first
                    exp = self.client.get_experiment_by_name(name)
                    if exp is None:
                        raise
            if exp is not None:
                self._experiments[name] = exp.experiment_id
        return self._experiments[name]

    def runs(self, model: str, filter_string: str = "") -> list:
        return self.client.search_runs([self.experiment(model)], filter_string=filter_string, max_results=1000)

    def run_for_version(self, model: str, version: int):
        found = self.runs(model, f"tags.`{VERSION_TAG}` = '{int(version)}' and attributes.status = 'FINISHED'")
        return found[0] if found else None

    def _log_run(self, model: str, name: str, tags: dict, params: dict, metrics: dict[str, float],
                 artifacts: dict[str, bytes], status: str = "FINISHED", steps: dict[str, list] | None = None) -> str:
        client = self.client
        run = client.create_run(self.experiment(model), run_name=name, tags={MODEL_TAG: model, **tags})
        rid = run.info.run_id
        try:
            self._fill_run(rid, params, metrics, artifacts, steps or {})
            client.set_terminated(rid, status=status)
        except Exception:
            try:                     # a half-logged run is never mistaken for a logged one: the backfill redoes it
                client.delete_run(rid)
            except Exception:
                pass
            raise
        return rid

    def _fill_run(self, rid: str, params: dict, metrics: dict[str, float], artifacts: dict[str, bytes],
                  steps: dict[str, list]) -> None:
        from mlflow.entities import Metric, Param
        client, now = self.client, int(time.time() * 1000)
        ms = [Metric(k, v, now, 0) for k, v in metrics.items()]
        for key, series in steps.items():
            ms += [Metric(key, float(v), now, i + 1) for i, v in enumerate(series)]
        ps = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(ps), 100):           # a batch holds at most 100 params and 1000 metrics
            client.log_batch(rid, params=ps[i:i + 100])
        for i in range(0, len(ms), 1000):
            client.log_batch(rid, metrics=ms[i:i + 1000])
        for path, body in artifacts.items():
            if path.endswith(".json"):
                client.log_text(rid, body.decode(), path)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    local = os.path.join(tmp, os.path.basename(path))
                    with open(local, "wb") as f:
                        f.write(body)
                    client.log_artifact(rid, local, os.path.dirname(path) or None)

    def _log_version(self, meta: ModelMetadata) -> None:
        if self.run_for_version(meta.model, meta.version) is not None:
            return
        tags = {VERSION_TAG: str(meta.version), OUTCOME_TAG: "published",
                "afterdark.parent": str(meta.parent) if meta.parent is not None else "",
                BACKBONE_TAG: (meta.backbone or {}).get("fingerprint", ""),
                "afterdark.data_sha256": meta.data.get("data_sha256", ""),
                "afterdark.gates": "passed",
                "mlflow.note.content": meta.data.get("note") or ""}
        tags.update({f"afterdark.artifact.{name}": artifact_key(meta.model, meta.version, name) for name in meta.artifacts or {}})
        artifacts = {"metadata.json": meta.to_json()}
        if "report.png" in (meta.artifacts or {}) and self._store is not None:
            artifacts["report.png"] = self._store.get(artifact_key(meta.model, meta.version, "report.png")).body
        self._log_run(meta.model, f"v{meta.version}", tags, meta.params, version_metrics(meta), artifacts)

    def _log_refused(self, model: str, params: dict, metrics: dict, reasons: list[str]) -> None:
        tags = {OUTCOME_TAG: "refused", "afterdark.gates": "failed", "mlflow.note.content": "; ".join(reasons)}
        self._log_run(model, "refused", tags, params, dict(flatten("", metrics)),
                      {"gates.json": json.dumps({"reasons": reasons, **metrics}, indent=1, default=str).encode()},
                      status="FAILED")

    def _log_backbone(self, model: str, manifest: dict) -> None:
        fp = manifest["fingerprint"]
        self._backbones_logged.add(fp)
        if self.runs(model, f"tags.`{BACKBONE_TAG}` = '{fp}' and tags.`{OUTCOME_TAG}` = 'backbone' "
                                f"and attributes.status = 'FINISHED'"):
            return
        training = manifest.get("training") or {}
        history = training.get("history") or {}
        tags = {BACKBONE_TAG: fp, OUTCOME_TAG: "backbone", "afterdark.artifact.backbone.tflite": manifest.get("key", ""),
                "mlflow.note.content": training.get("source", "")}
        metrics = dict(flatten("parity", {k: (manifest.get("parity") or {}).get(k)
                                          for k in ("max_abs_diff", "top1_agreement")}))
        metrics.update(flatten("", {"convert_seconds": manifest.get("convert_seconds"),
                                    "train_seconds": training.get("seconds"), "tflite_bytes": manifest.get("bytes")}))
        self._log_run(model, f"backbone {fp[:12]}", tags, training.get("params") or {}, metrics,
                      {"backbone.json": json.dumps(manifest, indent=1, sort_keys=True).encode()},
                      steps={f"epoch.{k}": v for k, v in history.items()})

    def _backfill(self, model: str) -> None:
        if self.registry is None:
            return
        logged = {r.data.tags.get(VERSION_TAG) for r in
                  self.runs(model, f"tags.`{OUTCOME_TAG}` = 'published' and attributes.status = 'FINISHED'")}
        for v in self.registry.versions(model):
            if str(v) in logged:
                continue
            meta = self.registry.metadata(model, v)
            fp = (meta.backbone or {}).get("fingerprint")
            manifest = self.registry.backbone_manifest(fp) if fp and fp not in self._backbones_logged else None
            if manifest is not None:
                self._log_backbone(model, {"fingerprint": fp, **manifest})
            print(f"[tracking] logging {model} v{v} to MLflow (missed when it was published)", flush=True)
            self._log_version(meta)
