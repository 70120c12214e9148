"""`bootstrap` publishes v1 and v2: complete metadata, verified artifacts, TFLite parity with Keras."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np

from layers.images import preprocess
from layers.serving.litert import LiteModel
from layers.registry import Registry, artifact_key
from tests.training_job.conftest import read_topic

REQUIRED = ("model", "version", "created_at", "labels", "input_size", "preprocessing", "architecture", "backbone",
            "data", "params", "metrics", "conversion", "sizes", "artifacts")


def test_v1_and_v2_with_complete_metadata(bootstrapped, store, settings):
    reg = Registry(store)
    assert reg.versions(bootstrapped)[:2] == [1, 2]     # other tests may have published more since
    m1, m2 = reg.metadata(bootstrapped, 1), reg.metadata(bootstrapped, 2)
    for m in (m1, m2):
        for f in REQUIRED:
            assert getattr(m, f) not in (None, "", {}, []), f
        assert m.labels == ["engineer", "non_engineer"]
        assert m.architecture["name"] == "MobileNetV2"
        assert m.data["data_sha256"] and m.data["counts"]["holdout"] > 0
        assert m.metrics["holdout"]["accuracy"] >= m.params["min_accuracy"]
        assert set(m.metrics["holdout"]["per_class"]) == {"engineer", "non_engineer"}
        for name, art in m.artifacts.items():    # the recorded sha256 is the stored object's
            body = store.get(artifact_key(bootstrapped, m.version, name)).body
            assert hashlib.sha256(body).hexdigest() == art["sha256"] and len(body) == art["bytes"]
        assert store.get(artifact_key(bootstrapped, m.version, "report.png")).body[:8] == b"\x89PNG\r\n\x1a\n"
    assert m1.backbone["fingerprint"] == m2.backbone["fingerprint"]      # one shared, frozen backbone
    assert m1.data["data_sha256"] != m2.data["data_sha256"]             # ...but different models
    assert m1.params["seed"] != m2.params["seed"]
    doc, _ = reg.control()
    route = doc.models[bootstrapped]
    assert route.weights[1] == 100 and route.weights[2] == 0 and {1, 2} <= set(route.rendezvous)
    events = read_topic(settings, settings.kafka.topics.model_events, lambda e: e["model"] == bootstrapped and e["event"] == "published", want=2)
    assert sorted(e["version"] for e in events) == [1, 2]


def test_the_composed_path_agrees_with_keras_on_held_out_images(bootstrapped, store, tmp_path):
    """Rebuild the Keras model from the stored backbone weights and head.npz, and compare it with what serving
    runs: backbone.tflite then head.tflite on LiteRT (the Loader), on hold-out images. Both versions share one
    backbone artifact, and each head is a few KiB."""
    from training_job.config import TrainConfig
    from training_job.convert import agreement
    from training_job.head import Head
    from training_job.model import assemble
    from training_job.pipeline import Trainer
    from layers.serving.loader import Loader

    reg = Registry(store)
    meta = reg.metadata(bootstrapped, 1)
    trainer = Trainer(store, None, TrainConfig(model=bootstrapped))
    backbone, _ = trainer.backbones.for_version(meta)
    arrays = np.load(io.BytesIO(reg.fetch_artifact(bootstrapped, 1, "head.npz", meta)))
    full = assemble(backbone, Head(arrays["kernel"], arrays["bias"]))
    data = json.loads(reg.fetch_artifact(bootstrapped, 1, "data.json", meta))
    hold = [e for e in data["examples"] if e["split"] == "holdout"][:48]
    x = np.stack([preprocess(store.get(e["key"]).body, meta.input_size) for e in hold])
    loader = Loader(reg, str(tmp_path))
    v1, v2 = loader.load(bootstrapped, 1), loader.load(bootstrapped, 2)
    served = v1.predict(x)
    result = agreement(np.asarray(full.predict(x, verbose=0)), served)
    assert result["ok"], result
    assert result["max_abs_diff"] <= 1e-4 and result["top1_agreement"] == 1.0
    assert v1.backbone is v2.backbone and len(loader.backbones) == 1
    assert meta.sizes["head.tflite"] < 64 * 1024 < meta.sizes["backbone.tflite"]
    assert meta.conversion["ok"] and meta.conversion["composed"]["max_abs_diff"] <= 1e-4
    # and the served model is actually right on most hold-out images
    y = np.array([meta.labels.index(e["label"]) for e in hold])
    assert (served.argmax(1) == y).mean() >= 0.75


def test_export_writes_one_portable_model_that_serves_the_same(bootstrapped, store, tmp_path):
    from tests.training_job.conftest import training_job
    out = tmp_path / "v2.tflite"
    result = training_job("export", "--model", bootstrapped, "--version", "2", "--out", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["parity"]["ok"] and report["bytes"] == out.stat().st_size
    meta = Registry(store).metadata(bootstrapped, 2)
    lite = LiteModel(out.read_bytes())
    assert lite.input_shape == (meta.input_size, meta.input_size, 3) and lite.n_outputs == len(meta.labels)


def test_the_backbone_step_warms_up_then_decays_along_a_cosine():
    """--warmup-epochs: the Adam step rises linearly to learning_rate, then falls to 0 by the last step; 0
    keeps the constant step (the default). 64 images in batches of 32: 2 steps an epoch."""
    from training_job.config import TrainConfig
    from training_job.model import step_size

    assert step_size(TrainConfig(learning_rate=6e-3), 64) == 6e-3
    schedule = step_size(TrainConfig(learning_rate=6e-3, warmup_epochs=2, backbone_epochs=6, batch_size=32), 64)
    at = lambda step: float(schedule(step))
    assert at(0) == 0.0 and abs(at(2) - 3e-3) < 1e-9 and abs(at(4) - 6e-3) < 1e-9      # linear, over 4 steps
    assert 6e-3 > at(6) > at(8) > at(10) > at(12) and at(12) < 1e-9                    # a cosine to 0 by step 12
    assert abs(at(8) - 3e-3) < 1e-9                                                       # half-way down: half
