"""`python -m training_job consume`: the long-running learner. Consumes `fixes` in the consumer group
`trainer`, and for each batch (at least `min_fixes` valid fixes, or `max_wait_s` after the first):

    consensus over every fix so far -> retrain the head on cached embeddings -> convert -> parity and
    accuracy gates -> publish the version -> model-events -> ONLY THEN commit the Kafka offsets.

A crash anywhere before the commit replays the batch on restart; publishing is idempotent on the data
(data_sha256), so a replay never publishes the same data twice and never loses a fix. A malformed fix
(bad JSON, unknown label, image not stored) goes to the dead-letter topic with the reason.
"""
from __future__ import annotations

import json
import signal
import time
from dataclasses import asdict

from layers.config import Settings
from layers.errors import BadInput
from layers.events import DeadLetter, EventSink, FixEvent, Malformed, decode, make_consumer, now_ms
from layers.registry import Registry, image_key
from layers.store import BlobStore
from training_job.config import TrainConfig
from training_job.data import consensus, examples
from training_job.pipeline import Outcome, Trainer


class FixConsumer:
    def __init__(self, settings: Settings, cfg: TrainConfig) -> None:
        self.settings, self.cfg = settings, cfg
        self.store = BlobStore(settings.s3)
        self.sink = EventSink(settings.kafka, client_id="training-job")
        self.trainer = Trainer(self.store, self.sink, cfg)
        self.registry = Registry(self.store)
        self.topic = cfg.topic or settings.kafka.topics.fixes
        self._stop = False

    def stop(self, *_):
        self._stop = True

    def validate(self, raw: bytes | None) -> FixEvent | str:
        """The fix, or the reason it is malformed."""
        rec = decode(raw, FixEvent)
        if isinstance(rec, Malformed):
            return rec.reason
        try:
            rec.validate(self.trainer.labels)
        except BadInput as err:
            return err.message
        if not self.store.exists(rec.image_key) or rec.image_key != image_key(rec.image_sha256):
            return f"image {rec.image_key} is not stored (fixes must reference images/<sha256>)"
        return rec

    def dead_letter(self, record, reason: str) -> None:
        payload = (record.value or b"").decode("utf-8", "replace")
        print(f"[consume] dead-letter offset {record.offset}: {reason}", flush=True)
        self.sink.send(self.settings.kafka.topics.dead_letter, DeadLetter(source_topic=record.topic, partition=record.partition,
                                                     offset=record.offset, reason=reason, payload=payload,
                                                     created_at_ms=now_ms()))

    def process(self, batch: list[dict]) -> Outcome:
        model = self.cfg.model
        versions = self.registry.versions(model)
        if not versions:
            raise RuntimeError(f"{model} has no version to retrain: run `python -m training_job bootstrap` first")
        parent = self.registry.metadata(model, versions[-1])
        parent_data = json.loads(self.registry.fetch_artifact(model, parent.version, "data.json", parent))
        fix_records = {f["fix_id"]: f for f in parent_data.get("fix_records", [])}
        new = [f for f in batch if f["fix_id"] not in fix_records]
        fix_records.update({f["fix_id"]: f for f in batch})
        agreed = consensus(list(fix_records.values()))
        if agreed.quarantined:
            print(f"[consume] quarantined (tie): {sorted(agreed.quarantined)}", flush=True)
        items, _ = self.trainer.dataset()
        exs = examples(items, agreed)
        backbone, info = self.trainer.backbone_for(parent)
        print(f"[consume] training on {len(batch)} fixes ({len(new)} new, {len(fix_records)} in all) "
              f"from parent v{parent.version}", flush=True)
        return self.trainer.train_and_publish(exs, agreed, list(fix_records.values()), backbone, info, parent=parent,
                                              seed=parent.params.get("seed", self.cfg.seed),
                                              note=f"online: {len(new)} new fixes")

    def run(self, max_batches: int | None = None, exit_when_idle_s: float | None = None) -> list[Outcome]:
        signal.signal(signal.SIGTERM, self.stop)
        consumer = make_consumer(self.settings.kafka, self.topic, self.cfg.group, max_poll_records=500)
        print(f"[consume] consuming '{self.topic}' as group '{self.cfg.group}' "
              f"(batch: {self.cfg.min_fixes} fixes or {self.cfg.max_wait_s}s)", flush=True)
        outcomes: list[Outcome] = []
        batch: list[dict] = []
        first_at = None
        uncommitted = False
        last_activity = time.time()
        try:
            while not self._stop:
                polled = consumer.poll(timeout_ms=500)
                for records in polled.values():
                    for record in records:
                        uncommitted = True
                        last_activity = time.time()
                        fix = self.validate(record.value)
                        if isinstance(fix, str):
                            self.dead_letter(record, fix)
                            continue
                        batch.append(asdict(fix))
                        first_at = first_at or time.time()
                if batch and (len(batch) >= self.cfg.min_fixes or time.time() - first_at >= self.cfg.max_wait_s):
                    print(f"[consume] batch of {len(batch)} fixes ready", flush=True)
                    outcomes.append(self.process(batch))
                    consumer.commit()
                    print(f"[consume] committed offsets after {outcomes[-1].status} v{outcomes[-1].version}", flush=True)
                    batch, first_at, uncommitted = [], None, False
                    last_activity = time.time()
                    if max_batches and len(outcomes) >= max_batches:
                        break
                elif uncommitted and not batch:
                    consumer.commit()       # only dead-lettered records since the last commit
                    uncommitted = False
                if exit_when_idle_s and not batch and time.time() - last_activity > exit_when_idle_s:
                    break
        finally:
            consumer.close(autocommit=False)
            self.sink.close()
        return outcomes
