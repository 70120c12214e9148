"""The `votes` table: one row per vote, keyed by its vote id (the request's idempotency key).

Example:
    ledger = Ledger(db)
    inserted = ledger.record(votes)             # one transaction; a vote id already present is skipped
    snap = ledger.snapshot("engineer")          # LedgerSnapshot(watermark=42, latest=[LatestVote, ...])

IMPORTANT:
  * `record` is idempotent: a vote delivered twice by Kafka (a replay after a crash) is one row.
  * "Latest" is ledger order (`seq`). Votes on one image share a Kafka partition (keyed by the image's
    sha256) and one trainer inserts them in offset order, so ledger order is the order Kafka acknowledged
    them, whatever the functions' clocks say.
  * The watermark is the highest `seq`. One trainer inserts per model, so every vote at or below a
    watermark is committed when the watermark is read.
"""
from __future__ import annotations

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
