"""/predict's and /predict-rendezvous' services on a model of the test's own (real MinIO, Kafka and LiteRT):
the answer, the decoy off the hot path, the cache of a repeated image, and every version of the rendezvous
set scoring one image (layers.serving.predictor, layers.serving.rendezvous)."""
from __future__ import annotations

import dataclasses

import pytest

from layers.events import IMAGE_HEADER, DecoyRecord, EventSink, decode
from layers.images import sha256_hex
from layers.registry import Policy, Registry, decoy_key
from layers.serving.predictor import Predictor
from layers.serving.rendezvous import Rendezvous
from layers.serving.runtime import ModelRuntime
from portraits.synth import portrait, to_jpeg
from tests.conftest import audited, new_topic, wait_until
from tests.training_job.conftest import copy_version, read_topic


@pytest.fixture
def two_versions(bootstrapped, store, settings, uid, tmp_path):
    """v1 live and v2 (v1 with its outputs swapped, always wrong where v1 is right) in the rendezvous set, a
    runtime serving them, and topics of the test's own."""
    reg, model = audited(store), f"serve-{uid}"
    live = copy_version(reg, bootstrapped, 1, model)
    flipped = copy_version(reg, bootstrapped, 1, model, flip=True, parent=live)
    reg.register(model, live, Policy())
    reg.register(model, flipped, Policy())
    kafka = dataclasses.replace(settings.kafka, topic_prefix=f"t{uid}-")        # topics of its own
    for topic in (kafka.topics.predict_decoy, kafka.topics.predictions):
        new_topic(settings, topic)
    mine = dataclasses.replace(settings, model=model, kafka=kafka,
                               serving=dataclasses.replace(settings.serving, cache_dir=str(tmp_path)))
    runtime = ModelRuntime(Registry(store), model, mine.serving).start()
    assert wait_until(lambda: {live, flipped} <= set(runtime.snapshot().versions), 60)
    sink = EventSink(mine.kafka, client_id="test")
    yield mine, runtime, sink, live, flipped
    runtime.stop()
    sink.close()


def test_a_prediction_answers_from_the_live_version_and_mirrors_the_request(two_versions, store):
    mine, runtime, sink, live, flipped = two_versions
    predictor = Predictor(runtime, store, sink, mine)
    jpeg = to_jpeg(portrait(91_001)[0])
    p = predictor.predict(jpeg, user="api:test", request_id="r-1")
    assert (p.model, p.version, p.image_sha256) == (mine.model, live, sha256_hex(jpeg))
    assert p.label in p.probabilities and abs(sum(p.probabilities.values()) - 1) < 1e-3
    assert p.unconfident == (p.confidence < mine.serving.unconfident_below)
    decoys = read_topic(mine, mine.kafka.topics.predict_decoy, lambda d: d.get("request_id") == "r-1", raw=True)
    assert decoys and decode(decoys[0].value, DecoyRecord).label == p.label
    if p.unconfident:                                 # stored at once, for the review post and its buttons
        assert store.get(decoy_key(p.image_sha256)).body == jpeg
    else:                                             # the input rides in the record: no S3 write per request
        assert dict(decoys[0].headers)[IMAGE_HEADER] == jpeg and not store.exists(decoy_key(p.image_sha256))
    again = predictor.predict(jpeg, user="api:test", request_id="r-2")
    assert (again.label, again.version) == (p.label, p.version) and predictor.cache.stats()["hits"] == 1
    assert predictor.status()["offpath"]["decoy.submitted"] >= 1 and predictor.up()


def test_every_version_of_the_rendezvous_set_scores_the_image(two_versions):
    mine, runtime, sink, live, flipped = two_versions
    rendezvous = Rendezvous(runtime, mine.serving, sink, mine.kafka.topics.predictions)
    result = rendezvous.score(to_jpeg(portrait(91_002)[0]), "rv-1", deadline_s=10)
    answers = {a.version: a for a in result.answers}
    assert set(answers) == {live, flipped} and not any(a.late for a in answers.values())
    assert answers[live].label != answers[flipped].label                          # v2 is v1 swapped
    assert result.chosen.confidence == max(a.confidence for a in answers.values())    # best-confidence
    for label, p in result.average.items():
        assert p == pytest.approx((answers[live].probabilities[label] + answers[flipped].probabilities[label]) / 2, abs=1e-4)
    assert read_topic(mine, mine.kafka.topics.predictions, lambda r: r.get("request_id") == "rv-1")
