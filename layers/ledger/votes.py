"""The `votes` table: one row per vote, keyed by its vote id (the request's idempotency key).

Example:
    ledger = Ledger(db)
    inserted = ledger.record(votes)             # one transaction; a vote id already present is skipped
    snap = ledger.snapshot("engineer")          # LedgerSnapshot(watermark=42, latest=[LatestVote, ...])

IMPORTANT:
  * `record` is idempotent: a vote delivered twice by Kafka (a replay after a crash) is one row.
  * An Idempotency-Key is bound to its request when the vote is acknowledged, not when the trainer ingests it
    (`bind_key`, table vote_keys): a second request with the key and another image or label is a 409 at once.
  * "Latest" is ledger order (`seq`). Votes on one image share a Kafka partition (keyed by the image's
    sha256) and one trainer inserts them in offset order, so ledger order is the order Kafka acknowledged
    them, whatever the functions' clocks say.
  * The watermark is the highest `seq`. One trainer inserts per model, so every vote at or below a
    watermark is committed when the watermark is read.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from layers.db import Database
from layers.errors import BadInput
from layers.events import Record


VOTE_SOURCES = ("slack", "api", "button")


@dataclass(frozen=True)
class Vote(Record):
    """THE vote, one value from /fix to the ledger: `principal` says the image stored at images/<sha256> is
    `label`, for `model`. Its Kafka record on `fixes` is its serialised form (kind "fix"), a ledger row is it
    plus where Kafka put it (Recorded), and /fix's receipt wraps it (layers.ledger.recorder.VoteReceipt).
    `vote_id` is the request's idempotency key (layers.edge.auth.vote_id), so a retried request is one vote and a
    changed vote is a new one. Schema 2: schema 1 (content-derived fix ids) is gone."""
    KIND: ClassVar[str] = "fix"
    SCHEMA: ClassVar[int] = 2
    vote_id: str
    model: str
    image_sha256: str
    image_key: str
    label: str
    principal: str
    source: str           # slack | api | button
    created_at_ms: int

    def validate(self, labels: tuple[str, ...] | list[str]) -> None:
        """Every field, strictly: a record that passes can be inserted into the ledger as it is. Types are
        checked by `from_json` (`decode`); a record built in code is checked here too."""
        wrong = self.mistyped({f.name: getattr(self, f.name) for f in fields(self)})
        if wrong:
            raise BadInput(wrong)
        if any("\x00" in v for v in asdict(self).values() if isinstance(v, str)):
            raise BadInput("a text field holds a NUL character, which the ledger cannot store")
        if len(self.image_sha256) != 64 or any(c not in "0123456789abcdef" for c in self.image_sha256):
            raise BadInput("image_sha256 must be 64 lowercase hex characters")
        if self.label not in labels:
            raise BadInput(f"unknown label {self.label!r}", valid_labels=list(labels))
        if not self.principal.startswith(("slack:", "api:")):
            raise BadInput(f"principal {self.principal!r} is not namespaced (slack:… or api:…)")
        if self.source not in VOTE_SOURCES:
            raise BadInput(f"unknown source {self.source!r}")
        if not (8 <= len(self.vote_id) <= 64) or not self.model or len(self.model) > 128:
            raise BadInput("vote_id (8-64 characters) and model (at most 128) are required")
        if len(self.principal) > 256 or len(self.image_key) > 256:
            raise BadInput("principal and image_key are at most 256 characters")
        if not (0 <= self.created_at_ms < 2**53):
            raise BadInput("created_at_ms must be milliseconds since the epoch")


@dataclass(frozen=True)
class Position:
    """Where Kafka put a vote's record: ledger order is this order."""
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Recorded:
    """A row of the ledger: the vote, and the position of the record it was ingested from."""
    vote: Vote
    position: Position


@dataclass(frozen=True)
class LatestVote:
    """A principal's latest vote on an image."""
    image_sha256: str
    image_key: str
    label: str
    principal: str
    vote_id: str
    seq: int


@dataclass(frozen=True)
class LedgerSnapshot:
    model: str
    watermark: int              # the highest seq included
    latest: list[LatestVote]
    votes: int                  # every vote up to the watermark, superseded ones included


@dataclass(frozen=True)
class KeyBinding:
    state: str          # new | same | conflict (Ledger.bind_key)
    sent: bool          # whether the bound request's vote event was acknowledged


def request_fingerprint(model: str, image_sha256: str, label: str) -> str:
    """What an Idempotency-Key is bound to: the vote it asked for (the principal is in the vote id)."""
    return hashlib.sha256(f"{model}\n{image_sha256}\n{label}".encode()).hexdigest()[:32]


COLUMNS = ("vote_id", "model", "image_sha256", "image_key", "label", "principal", "source", "created_at",
           "kafka_topic", "kafka_partition", "kafka_offset")


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, votes: list[Recorded]) -> int:
        """Insert the votes in one transaction; returns how many were new. Rows are inserted in Kafka order
        (topic, partition, offset): that order is what "latest" means, and two writers with overlapping
        batches take their locks in the same order, so they never deadlock."""
        if not votes:
            return 0
        inserted = 0
        with self.db.transaction() as cur:
            for row in sorted(votes, key=lambda r: (r.position.topic, r.position.partition, r.position.offset)):
                v, at = row.vote, row.position
                cur.execute(
                    f"INSERT INTO votes ({', '.join(COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                    "to_timestamp(%s / 1000.0), %s, %s, %s) ON CONFLICT (vote_id) DO NOTHING",
                    (v.vote_id, v.model, v.image_sha256, v.image_key, v.label, v.principal, v.source,
                     v.created_at_ms, at.topic, at.partition, at.offset))
                inserted += cur.rowcount
        return inserted

    def bind_key(self, vote_id: str, fingerprint: str) -> KeyBinding:
        """Bind a vote id (a principal's Idempotency-Key) to the request it came with, as payment APIs do,
        before the vote is sent: the first request for a key owns it ("new"); a later one with the same
        fingerprint is the same request ("same", with whether its event was acknowledged); one with another
        fingerprint is a "conflict". Of two concurrent requests with one key, exactly one gets "new" (the
        primary key decides; the other waits for it to commit)."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO vote_keys (vote_id, fingerprint) VALUES (%s, %s) ON CONFLICT (vote_id) DO NOTHING",
                        (vote_id, fingerprint))
            if cur.rowcount == 1:
                return KeyBinding("new", sent=False)
            cur.execute("SELECT fingerprint, sent FROM vote_keys WHERE vote_id = %s", (vote_id,))
            bound, sent = cur.fetchone()
        return KeyBinding("same" if bound == fingerprint else "conflict", sent=sent)

    def key_sent(self, vote_id: str) -> None:
        """The vote's event was acknowledged by Kafka: a retry of its request is answered as a duplicate."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE vote_keys SET sent = true WHERE vote_id = %s AND NOT sent", (vote_id,))

    def get(self, vote_id: str) -> Recorded | None:
        with self.db.transaction() as cur:
            cur.execute("SELECT vote_id, model, image_sha256, image_key, label, principal, source, "
                        "(extract(epoch FROM created_at) * 1000)::bigint, kafka_topic, kafka_partition, kafka_offset "
                        "FROM votes WHERE vote_id = %s", (vote_id,))
            row = cur.fetchone()
        return Recorded(Vote(*row[:8]), Position(*row[8:])) if row else None

    def watermark(self, model: str) -> int:
        with self.db.transaction() as cur:
            cur.execute("SELECT coalesce(max(seq), 0) FROM votes WHERE model = %s", (model,))
            return cur.fetchone()[0]

    def pending(self, model: str, after: int) -> tuple[int, float | None]:
        """(votes above the watermark `after`, seconds since the oldest of them was ingested)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT count(*), extract(epoch FROM now() - min(ingested_at)) FROM votes "
                        "WHERE model = %s AND seq > %s", (model, after))
            n, age = cur.fetchone()
        return n, (float(age) if age is not None else None)

    def snapshot(self, model: str) -> LedgerSnapshot:
        """The watermark and each principal's latest vote per image at or below it, read consistently."""
        with self.db.transaction() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT coalesce(max(seq), 0), count(*) FROM votes WHERE model = %s", (model,))
            watermark, total = cur.fetchone()
            cur.execute("SELECT DISTINCT ON (image_sha256, principal) image_sha256, image_key, label, principal, "
                        "vote_id, seq FROM votes WHERE model = %s AND seq <= %s "
                        "ORDER BY image_sha256, principal, seq DESC", (model, watermark))
            latest = [LatestVote(sha.strip(), *rest) for sha, *rest in cur.fetchall()]
        return LedgerSnapshot(model=model, watermark=watermark, latest=latest, votes=total)

    def latest_of(self, model: str, principal: str, limit: int = 10) -> list[LatestVote]:
        """A principal's latest vote on each image, newest first (their App Home)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT * FROM (SELECT DISTINCT ON (image_sha256) image_sha256, image_key, label, principal, "
                        "vote_id, seq FROM votes WHERE model = %s AND principal = %s ORDER BY image_sha256, seq DESC) "
                        "latest ORDER BY seq DESC LIMIT %s", (model, principal, limit))
            return [LatestVote(sha.strip(), *rest) for sha, *rest in cur.fetchall()]

    def voters_of(self, vote_ids: list[str]) -> dict[str, tuple[str, str]]:
        """{vote_id: (principal, label)} for these votes."""
        if not vote_ids:
            return {}
        with self.db.transaction() as cur:
            cur.execute("SELECT vote_id, principal, label FROM votes WHERE vote_id = ANY(%s)", (list(vote_ids),))
            return {vid: (who, label) for vid, who, label in cur.fetchall()}

    def tally_by_principal(self, model: str, image_sha256: str) -> dict[str, str]:
        """{principal: the label of their latest vote on this image}."""
        with self.db.transaction() as cur:
            cur.execute("SELECT DISTINCT ON (principal) principal, label FROM votes WHERE model = %s AND "
                        "image_sha256 = %s ORDER BY principal, seq DESC", (model, image_sha256))
            return dict(cur.fetchall())

    def tally(self, model: str, image_sha256: str) -> dict[str, int]:
        """{label: principals whose latest vote on this image is that label}."""
        with self.db.transaction() as cur:
            cur.execute("SELECT label, count(*) FROM (SELECT DISTINCT ON (principal) label FROM votes "
                        "WHERE model = %s AND image_sha256 = %s ORDER BY principal, seq DESC) latest "
                        "GROUP BY label ORDER BY label", (model, image_sha256))
            return dict(cur.fetchall())
