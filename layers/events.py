"""Kafka records and the Kafka seam. Every record is UTF-8 JSON of one Record dataclass (docs/formats.md): the
ones below, and the vote (layers.ledger.Vote, kind "fix"), which belongs to the ledger.

Example:
    sink = EventSink(Settings.from_env().kafka)
    sink.send(settings.kafka.topics.fixes, Vote(vote_id=..., model="engineer", image_sha256=..., ...), key=sha)
    consumer = make_consumer(settings.kafka, Topic.FIXES, group="trainer")   # manual commit

IMPORTANT:
  * `EventSink.send` returns only after the broker acknowledged the write (acks=all); when Kafka cannot be
    reached it raises `Unavailable` instead of pretending. kafka-python errors are translated here only.
  * `decode` never raises on a malformed payload: it returns a `Malformed` with the reason, so consumers can
    route it to the dead-letter topic and keep going.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, ClassVar

from layers.config import KafkaSettings, Settings
from layers.errors import Unavailable


def now_ms() -> int:
    return int(time.time() * 1000)


# kafka-python backs off up to 30 s between reconnects by default: after a broker restart, producers would
# keep failing for that long. 2 s bounds the gap.
RECONNECT_BACKOFF_MAX_MS = 2000


@dataclass(frozen=True)
class Record:
    """Base of every record: `kind` names the type on the wire, `schema` its version."""
    KIND: ClassVar[str] = "record"
    SCHEMA: ClassVar[int] = 1

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.KIND, "schema": self.SCHEMA, **asdict(self)}

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        """Build from a decoded dict; unknown keys are ignored; a missing field, or a value not of its field's
        declared type (a string where an int belongs, a bool for an int, a number for a string), raises
        TypeError."""
        kept = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        wrong = cls.mistyped(kept)
        if wrong:
            raise TypeError(wrong)
        return cls(**kept)

    @classmethod
    def mistyped(cls, values: dict[str, Any]) -> str | None:
        """Why the first of `values` that is not of its field's declared type is wrong, or None."""
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            if not conforms(value, hints[name]):
                return f"field {name!r} must be {typing_name(hints[name])}, not {type(value).__name__}"
        return None


def conforms(value: Any, hint: Any) -> bool:
    """Whether a decoded JSON value is of a field's declared type (str, int, float, bool, None, unions,
    dict[...] and list[...] by their container). JSON has no int/bool distinction worth trusting: a bool is
    not an int here."""
    if hint is Any:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    container = typing.get_origin(hint) or hint
    return isinstance(value, container) if isinstance(container, type) else True


def typing_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


# A decoy record carries its image in this Kafka header (the raw bytes, at most ServingSettings.decoy_inline_bytes),
# so /predict does no S3 write per request: the decoy archiver (training_job.archiver) stores it at decoys/<sha256>.
# A record without it names an image /predict stored itself (an unconfident answer's, or one too large to carry).
IMAGE_HEADER = "image"


@dataclass(frozen=True)
class DecoyRecord(Record):
    """A mirrored /predict request: the input's key (the image rides in the IMAGE_HEADER header, or is stored
    already) and the answer given, for exact replay."""
    KIND: ClassVar[str] = "predict-decoy"
    request_id: str
    image_sha256: str
    image_key: str
    user: str | None
    created_at_ms: int
    model: str
    version: int
    label: str
    confidence: float


@dataclass(frozen=True)
class PredictionRecord(Record):
    """A shadow (mirror-set) version's answer to a live request, for comparison later."""
    KIND: ClassVar[str] = "prediction"
    request_id: str
    model: str
    version: int
    label: str
    confidence: float
    latency_ms: float
    created_at_ms: int


@dataclass(frozen=True)
class RendezvousRecord(Record):
    """A /predict-rendezvous request: every version's answer, the policy, what it chose, and the average."""
    KIND: ClassVar[str] = "rendezvous"
    request_id: str
    model: str
    policy: str
    chosen_version: int | None
    average: dict[str, float]
    answers: list[dict]          # {version, label, confidence, latency_ms, late}
    created_at_ms: int


@dataclass(frozen=True)
class ModelEvent(Record):
    """Something happened to a model version: published, registered, refused (gates failed), failed (a run broke)."""
    KIND: ClassVar[str] = "model-event"
    event: str            # published | registered | refused | failed
    model: str
    version: int | None
    created_at_ms: int
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def announce(sink: "EventSink", model: str, event: str, version: int | None, reason: str | None = None,
             **details: Any) -> None:
    """Send a ModelEvent to model-events (acks=all) and log it."""
    print(f"[event] {event} {model} v{version} {reason or ''}".rstrip(), flush=True)
    sink.send(sink.settings.topics.model_events, ModelEvent(event=event, model=model, version=version,
                                                            created_at_ms=now_ms(), reason=reason, details=details),
              key=model)


@dataclass(frozen=True)
class CommandRecord(Record):
    """An operator's request to a background worker, e.g. `train` (run a training now) for the trainer."""
    KIND: ClassVar[str] = "command"
    command: str          # train
    model: str
    actor: str            # the principal that asked
    created_at_ms: int


@dataclass(frozen=True)
class DeadLetter(Record):
    """A record that could not be processed, with why, and where it came from."""
    KIND: ClassVar[str] = "dead-letter"
    source_topic: str
    partition: int
    offset: int
    reason: str
    payload: str          # the original bytes, decoded as UTF-8 with replacement
    created_at_ms: int


@dataclass(frozen=True)
class Malformed:
    reason: str


def decode(raw: bytes | None, expect: type[Record]) -> Record | Malformed:
    """Parse one record of type `expect`; never raises."""
    try:
        data = json.loads((raw or b"").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return Malformed(f"not UTF-8 JSON: {err}")
    if not isinstance(data, dict):
        return Malformed("not a JSON object")
    if data.get("kind") != expect.KIND:
        return Malformed(f"kind {data.get('kind')!r}, expected {expect.KIND!r}")
    try:
        record = expect.from_json(data)
    except TypeError as err:
        return Malformed(f"missing or unexpected fields: {err}")
    return record


# -- the Kafka seam ------------------------------------------------------------------------------------

class EventSink:
    """Producer seam. `send` blocks until the broker acknowledged (acks=all) and raises Unavailable otherwise."""

    def __init__(self, settings: KafkaSettings, client_id: str = "afterdark") -> None:
        self.settings = settings
        self.client_id = client_id
        self._producer = None
        self._lock = threading.Lock()          # handler threads share one producer (it is thread-safe)

    def _get(self):
        with self._lock:
            return self._producer or self._connect()

    def _connect(self):
        from kafka import KafkaProducer
        from kafka.errors import KafkaError
        try:
            self._producer = KafkaProducer(
                **self.settings.client_options(), client_id=self.client_id, acks="all",
                bootstrap_timeout_ms=self.settings.bootstrap_timeout_ms,
                request_timeout_ms=self.settings.request_timeout_ms,
                max_block_ms=self.settings.request_timeout_ms,
                delivery_timeout_ms=self.settings.request_timeout_ms + 1000,
                linger_ms=0,
                # a decoy record carries its image (~50 KB): at the default 16 KB a batch holds one record, and
                # under load the queue of one-record batches outlived the delivery timeout (211 of 5,657 decoys
                # expired, bench/RESULTS.md); 512 KB batches carry about ten
                batch_size=512 * 1024,
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            )
        except KafkaError as err:
            raise Unavailable(f"Kafka unreachable at {self.settings.bootstrap}: {err}") from err
        return self._producer

    def publish(self, topic: str, record: Record, key: str | None = None,
                on_failure: Callable[[Exception], None] | None = None,
                headers: dict[str, bytes] | None = None) -> None:
        """Write without waiting for the acknowledgement (off the hot path: decoys, shadow predictions): the
        producer batches what accumulates, and a write the broker never acknowledges is handed to
        `on_failure` on the producer's thread. `headers` ride beside the record (a decoy's image). Raises
        Unavailable only when the producer cannot be built or its buffer stays full (max_block_ms)."""
        from kafka.errors import KafkaError
        producer = self._get()
        try:
            future = producer.send(topic, value=record.encode(), key=key.encode() if key else None,
                                   headers=list((headers or {}).items()) or None)
        except KafkaError as err:
            raise Unavailable(f"Kafka did not take the write to {topic}: {err}") from err
        if on_failure is not None:
            future.add_errback(on_failure)

    def send(self, topic: str, record: Record, key: str | None = None, timeout_s: float | None = None) -> tuple[int, int]:
        """Write and wait for the acknowledgement. Returns (partition, offset)."""
        from kafka.errors import KafkaError
        producer = self._get()
        try:
            future = producer.send(topic, value=record.encode(), key=key.encode() if key else None)
            meta = future.get(timeout=timeout_s or self.settings.request_timeout_ms / 1000 + 2)
        except KafkaError as err:
            raise Unavailable(f"Kafka did not acknowledge the write to {topic}: {err}") from err
        return meta.partition, meta.offset

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=2)
            self._producer = None


def make_consumer(settings: KafkaSettings, topic: str | tuple[str, ...], group: str, **overrides):
    """A consumer of `topic` (or several) in `group` with manual commits, from the earliest uncommitted offset."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError
    config = dict(**settings.client_options(), group_id=group, enable_auto_commit=False,
                  auto_offset_reset="earliest", bootstrap_timeout_ms=settings.bootstrap_timeout_ms,
                  session_timeout_ms=6000, heartbeat_interval_ms=2000,  # 6 s: the broker minimum
                  reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS)
    config.update(overrides)
    try:
        return KafkaConsumer(*((topic,) if isinstance(topic, str) else topic), **config)
    except KafkaError as err:
        raise Unavailable(f"Kafka unreachable at {settings.bootstrap}: {err}") from err


def dead_letter(sink: "EventSink", record, reason: str, what: str) -> None:
    """Send a consumed record that cannot be processed to the dead letters (acks=all), with why; logged."""
    print(f"[{what}] dead-letter offset {record.offset}: {reason}", flush=True)
    sink.send(sink.settings.topics.dead_letter, DeadLetter(
        source_topic=record.topic, partition=record.partition, offset=record.offset, reason=reason,
        payload=(record.value or b"").decode("utf-8", "replace"), created_at_ms=now_ms()))


def process_then_commit(consumer, polled: dict, work: Callable[[list], Any], what: str, retry_s: float
                        ) -> tuple[bool, Any]:
    """At-least-once for a consumer of a polled batch: `work` on its records, then the commit. When `work`
    (or the commit) raises AfterDarkError (a store, the ledger or Kafka is down), each partition is sought back
    to the batch's first offset and the caller waits `retry_s`: the same records come again, nothing is lost.
    Returns (done, what `work` returned)."""
    from layers.errors import AfterDarkError
    records = [r for batch in polled.values() for r in batch]
    try:
        result = work(records)
        consumer.commit()
        return True, result
    except AfterDarkError as err:
        print(f"[{what}] could not process {len(records)} records ({err.message}); retrying from the last "
              f"committed offset", flush=True)
        for tp, batch in polled.items():
            consumer.seek(tp, batch[0].offset)
        time.sleep(retry_s)
        return False, None


def make_reader(settings: KafkaSettings):
    """A consumer with no group and no commits, for a reader that assigns partitions and seeks itself (the
    replay of decoys: every reader keeps its own place)."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError
    try:
        return KafkaConsumer(**settings.client_options(), enable_auto_commit=False, group_id=None,
                             bootstrap_timeout_ms=settings.bootstrap_timeout_ms,
                             reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS)
    except KafkaError as err:
        raise Unavailable(f"Kafka unreachable at {settings.bootstrap}: {err}") from err


def ensure_topics(settings: KafkaSettings, topics: tuple[str, ...] | None = None) -> list[str]:
    """Create the missing topics (idempotent). Returns the ones it created."""
    topics = topics or settings.topics.all()
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError
    try:
        admin = KafkaAdminClient(**settings.client_options(), bootstrap_timeout_ms=settings.bootstrap_timeout_ms)
    except KafkaError as err:
        raise Unavailable(f"Kafka unreachable at {settings.bootstrap}: {err}") from err
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in missing])
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        admin.close()


def main(argv: list[str]) -> int:
    if argv[1:] == ["ensure-topics"]:
        created = ensure_topics(Settings.from_env().kafka)
        if created:
            print("created topics:", ", ".join(created), file=sys.stderr)
        return 0
    print("usage: python -m layers.events ensure-topics", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
