"""The /fix service: a human correction becomes durable before it is acknowledged.

Example:
    receipt = FixRecorder(store, sink, settings).record(jpeg_bytes, label="engineer", user="U123")

Order (ARCHITECTURE "Fix"): validate the label -> verify the bytes are an image -> store them at
images/<sha256> -> send the FixEvent to `fixes` and wait for the broker's acknowledgement (acks=all) ->
write the marker fixes/<fix_id>.json -> acknowledge. If S3 or Kafka fails, Unavailable (503) is raised and
nothing is acknowledged. The fix id is derived from (image, label, user), and the marker makes a repeat a
no-op: the same image, label and user twice is one fix.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from layers.config import Settings
from layers.errors import BadInput, Conflict
from layers.events import EventSink, FixEvent
from layers.images import decode, sha256_hex
from layers.registry import image_key
from layers.store import BlobStore


def fix_marker_key(fix_id: str) -> str:
    return f"fixes/{fix_id}.json"


@dataclass(frozen=True)
class FixReceipt:
    fix_id: str
    image_sha256: str
    image_key: str
    label: str
    user: str
    duplicate: bool
    next: str

    def to_json(self) -> dict:
        return asdict(self)


class FixRecorder:
    def __init__(self, store: BlobStore, sink: EventSink, settings: Settings,
                 batch_hint: str = "the trainer retrains after a batch of fixes (8 by default, or 30 s after the first)") -> None:
        self.store, self.sink, self.settings = store, sink, settings
        self.labels = settings.labels
        self.batch_hint = batch_hint

    def validate_label(self, label: object) -> str:
        if not isinstance(label, str) or label not in self.labels:
            raise BadInput(f"unknown class {label!r}; valid classes: {', '.join(self.labels)}",
                           valid_labels=list(self.labels))
        return label

    def record(self, data: bytes, label: object, user: object, source: str = "api") -> FixReceipt:
        label = self.validate_label(label)
        if not isinstance(user, str) or not user.strip():
            raise BadInput("a user is required (JSON field 'user', ?user= or X-User-Id)")
        decode(data)                                              # an image, by content; else 4xx, nothing stored
        sha = sha256_hex(data)
        key = image_key(sha)
        if not self.store.exists(key):
            try:
                self.store.put(key, data, if_none_match="*", content_type="application/octet-stream")
            except Conflict:
                pass                                              # same bytes, stored concurrently
        fix = FixEvent.new(image_sha256=sha, image_key=key, label=label, user=user.strip(), source=source)
        marker = fix_marker_key(fix.fix_id)
        if self.store.exists(marker):
            return self._receipt(fix, duplicate=True)
        self.sink.send(self.settings.kafka.topics.fixes, fix, key=sha)        # acks=all, or Unavailable
        try:
            self.store.put(marker, fix.encode(), if_none_match="*", content_type="application/json")
        except Conflict:
            pass
        return self._receipt(fix, duplicate=False)

    def _receipt(self, fix: FixEvent, duplicate: bool) -> FixReceipt:
        note = ("this exact fix was already recorded; nothing new was sent" if duplicate
                else f"recorded durably (image stored, Kafka acknowledged); {self.batch_hint}, then publishes a new version")
        return FixReceipt(fix_id=fix.fix_id, image_sha256=fix.image_sha256, image_key=fix.image_key, label=fix.label,
                          user=fix.user, duplicate=duplicate, next=note)
