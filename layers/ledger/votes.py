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
from dataclasses import dataclass

from layers.db import Database


@dataclass(frozen=True)
class Vote:
    vote_id: str
    model: str
    image_sha256: str
    image_key: str
    label: str
    principal: str
    source: str                 # slack | api | button
    created_at_ms: int
    kafka_topic: str
    kafka_partition: int
    kafka_offset: int


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

    def record(self, votes: list[Vote]) -> int:
        """Insert the votes in one transaction; returns how many were new. Rows are inserted in Kafka order
        (topic, partition, offset): that order is what "latest" means, and two writers with overlapping
        batches take their locks in the same order, so they never deadlock."""
        if not votes:
            return 0
        inserted = 0
        with self.db.transaction() as cur:
            for v in sorted(votes, key=lambda v: (v.kafka_topic, v.kafka_partition, v.kafka_offset)):
                cur.execute(
                    f"INSERT INTO votes ({', '.join(COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                    "to_timestamp(%s / 1000.0), %s, %s, %s) ON CONFLICT (vote_id) DO NOTHING",
                    (v.vote_id, v.model, v.image_sha256, v.image_key, v.label, v.principal, v.source,
                     v.created_at_ms, v.kafka_topic, v.kafka_partition, v.kafka_offset))
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

    def get(self, vote_id: str) -> Vote | None:
        with self.db.transaction() as cur:
            cur.execute("SELECT vote_id, model, image_sha256, image_key, label, principal, source, "
                        "(extract(epoch FROM created_at) * 1000)::bigint, kafka_topic, kafka_partition, kafka_offset "
                        "FROM votes WHERE vote_id = %s", (vote_id,))
            row = cur.fetchone()
        return Vote(*row) if row else None

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
