"""Every training run is in MLflow (the local tracking server that dev/start.sh runs): a published version has
its run with its metrics, parameters, gates, report and artifact keys; its backbone has a run with its epochs;
a missed version is backfilled; a tracking server that is down never fails the trainer."""
from __future__ import annotations

import os
import socket

import pytest

from layers import metrics as M
from layers.registry import Registry, artifact_key
from tests.conftest import wait_until
from training_job.tracking import OUTCOME_TAG, Tracker

URI = os.environ.get("MLFLOW_TRACKING_URI")
pytestmark = pytest.mark.skipif(not URI, reason="MLFLOW_TRACKING_URI is not set (dev/test.sh sets it)")


@pytest.fixture(scope="module")
def tracker(store):
    return Tracker(URI, store)


def test_a_published_version_has_its_run_with_its_metrics(bootstrapped, store, tracker):
    reg = Registry(store)
    for v in (1, 2):
        meta = reg.metadata(bootstrapped, v)
        run = tracker.run_for_version(bootstrapped, v)
        assert run is not None, f"no MLflow run for {bootstrapped} v{v}"
        data = run.data
        assert run.info.status == "FINISHED" and run.info.run_name == f"v{v}"
        assert data.tags[OUTCOME_TAG] == "published" and data.tags["afterdark.gates"] == "passed"
        assert data.tags["afterdark.backbone"] == meta.backbone["fingerprint"]
        assert data.tags["afterdark.artifact.head.tflite"] == artifact_key(bootstrapped, v, "head.tflite")
        assert data.metrics["holdout.accuracy"] == pytest.approx(meta.metrics["holdout"]["accuracy"])
        assert data.metrics["gate.composed_parity.max_abs_diff"] == pytest.approx(
            meta.conversion["composed"]["max_abs_diff"])
        assert data.params["seed"] == str(meta.params["seed"]) and data.params["head_c"] == str(meta.params["head_c"])
        paths = {a.path for a in tracker.client.list_artifacts(run.info.run_id)}
        assert {"metadata.json", "report.png"} <= paths


def test_the_backbone_run_has_its_epochs(bootstrapped, store, tracker):
    fp = Registry(store).metadata(bootstrapped, 1).backbone["fingerprint"]
    manifest = Registry(store).backbone_manifest(fp)
    runs = wait_until(lambda: tracker.runs(bootstrapped, f"tags.`afterdark.backbone` = '{fp}' and "
                                                         f"tags.`{OUTCOME_TAG}` = 'backbone'"), timeout_s=30)
    assert len(runs) == 1
    history = (manifest.get("training") or {}).get("history")
    if history:           # trained in this session (a cached test backbone was trained by an earlier one)
        curve = tracker.client.get_metric_history(runs[0].info.run_id, "epoch.loss")
        assert [m.step for m in curve] == list(range(1, len(history["loss"]) + 1))
        assert [round(m.value, 5) for m in curve] == history["loss"]


def test_a_version_mlflow_missed_is_backfilled_once(bootstrapped, tracker):
    run = tracker.run_for_version(bootstrapped, 2)
    tracker.client.delete_run(run.info.run_id)            # as if MLflow had been down when v2 was published
    assert tracker.run_for_version(bootstrapped, 2) is None
    tracker.backfill(bootstrapped)
    tracker.backfill(bootstrapped)                         # a second pass finds it logged: no duplicate
    assert tracker.flush(60)
    runs = tracker.runs(bootstrapped, "tags.`afterdark.version` = '2'")
    assert len(runs) == 1 and runs[0].info.run_id != run.info.run_id
    assert runs[0].data.metrics["holdout.accuracy"] > 0


def test_a_tracking_server_that_is_down_costs_a_count_not_a_run(bootstrapped, store):
    with socket.socket() as s:        # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = Tracker(f"http://127.0.0.1:{port}", store, timeout_s=2)
    before = M.TRACKING_FAILURES._value.get()
    down.published(Registry(store).metadata(bootstrapped, 1))      # returns at once; the failure is counted
    assert down.flush(60)
    assert M.TRACKING_FAILURES._value.get() == before + 1
