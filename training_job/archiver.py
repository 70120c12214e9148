"""The decoy archiver: /predict's mirrored images, from the predict-decoy topic into S3 at decoys/<sha256>.

    python -m training_job archive [--exit-when-idle S]     # a long-running consumer, group "<topic>-archiver"

/predict publishes each decoy record with its image in the IMAGE_HEADER header (docs/formats.md), so a request
makes no S3 write of its own. This consumer stores each image once (a conditional PUT: a repeat is a no-op,
so a re-read batch is harmless) and commits a batch only after every image in it is stored: a crash or an S3
outage re-reads the batch, and no acknowledged decoy is lost. A record that is not a decoy record, or whose
image does not hash to its image_sha256, goes to the dead letters. A record without the header names an image
/predict stored itself (an unconfident answer's, or one too large to carry). Replay, `/models compare`, the
canary analysis and a vote on a decoy read decoys/<sha256>, as before.

It needs neither TensorFlow nor the ledger, and any number may run in the group (Kafka splits the
partitions); it is the trainer image's `archive` command.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from layers.config import Settings
from layers.events import (IMAGE_HEADER, DecoyRecord, EventSink, Malformed, dead_letter, decode, make_consumer,
                           process_then_commit)
from layers.images import sha256_hex
from layers.registry import decoy_key
from layers.store import BlobStore

RETRY_S = 2.0


@dataclass
class Archived:
    """What the archiver did so far."""
    stored: int = 0          # images written
    present: int = 0         # images already there (a repeat, or a re-read batch)
    stored_by_predict: int = 0   # records without the header: /predict stored the image itself
    dead: list[str] = field(default_factory=list)   # why each refused record was refused

    def add(self, other: "Archived") -> None:
        self.stored, self.present = self.stored + other.stored, self.present + other.present
        self.stored_by_predict += other.stored_by_predict
        self.dead += other.dead


def lag(settings: Settings) -> int:
    """How many predict-decoy records the archiver group has not committed yet (0: every decoy image so far
    is stored). Reads the group's offsets without joining it."""
    from kafka import KafkaConsumer, TopicPartition
    topic = settings.kafka.topics.predict_decoy
    consumer = KafkaConsumer(**settings.kafka.client_options(), group_id=group_of(topic), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends = consumer.end_offsets(parts)
        return sum(max(0, ends[p] - (consumer.committed(p) or 0)) for p in parts)
    finally:
        consumer.close()


def group_of(topic: str) -> str:
    return f"{topic}-archiver"              # one group per topic (the tests' topics are prefixed)


class DecoyArchiver:
    def __init__(self, settings: Settings, store: BlobStore | None = None, sink: EventSink | None = None,
                 workers: int = 4) -> None:
        self.settings = settings
        self.store = store or BlobStore(settings.s3)
        self.sink = sink or EventSink(settings.kafka, client_id="decoy-archiver")
        self.topic = settings.kafka.topics.predict_decoy
        self.group = group_of(self.topic)
        self.totals = Archived()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="archive")   # PUTs overlap
        self._stop = False

    def stop(self, *_) -> None:
        self._stop = True

    def check(self, record) -> tuple[str, bytes] | str | None:
        """(key, image) to store, None when the record carries no image, or why it is refused."""
        rec = decode(record.value, DecoyRecord)
        if isinstance(rec, Malformed):
            return rec.reason
        image = dict(record.headers or []).get(IMAGE_HEADER)
        if image is None:
            return None
        if sha256_hex(image) != rec.image_sha256 or rec.image_key != decoy_key(rec.image_sha256):
            return f"its image does not match image_sha256 {rec.image_sha256[:12]}... (or its key {rec.image_key})"
        return rec.image_key, image

    def archive(self, records: list) -> Archived:
        """Store every image of a batch, then send its refused records to the dead letters. Raises
        (AfterDarkError) when S3 or Kafka cannot take them: the caller reads the batch again."""
        done, dead, writes = Archived(), [], []
        for r in records:
            checked = self.check(r)
            if isinstance(checked, str):
                dead.append((r, checked))
            elif checked is None:
                done.stored_by_predict += 1
            else:
                writes.append(self._pool.submit(self.store.create, *checked))
        errors = [w.exception() for w in writes]        # waits for every write before any error is raised
        failed = next((e for e in errors if e is not None), None)
        if failed is not None:
            raise failed
        for w in writes:
            done.stored += w.result()
            done.present += not w.result()
        for r, reason in dead:
            dead_letter(self.sink, r, reason, "archive")
            done.dead.append(reason)
        return done

    def run(self, exit_when_idle_s: float | None = None) -> Archived:
        """Consume until stopped (`stop`, the CLI's SIGTERM) or idle for `exit_when_idle_s`; returns the totals."""
        consumer = make_consumer(self.settings.kafka, self.topic, self.group, max_poll_records=200)
        print(f"[archive] storing the images of '{self.topic}' at decoys/ (group '{self.group}')", flush=True)
        last = time.time()
        try:
            while not self._stop:
                polled = consumer.poll(timeout_ms=500)
                records = [r for batch in polled.values() for r in batch]
                if not consumer.assignment() or records:
                    last = time.time()
                if records:
                    stored, done = process_then_commit(consumer, polled, self.archive, "archive", RETRY_S)
                    if not stored:
                        continue
                    self.totals.add(done)
                if exit_when_idle_s and time.time() - last > exit_when_idle_s:
                    break
        finally:
            consumer.close()
            self._pool.shutdown(wait=True)
            self.sink.close()
        return self.totals
