"""What the app has told people, so that it tells each thing once: vote receipts (each Slack voter, once per
promoted version that learnt from their votes) and questions to the crowd (an image at most once a day,
within a budget per hour). Both are claimed before they are sent, so two trainers never both send one, and
released when Slack did not take it, so a later look tries again.

Example:
    book = ReceiptBook(db)
    book.claim("engineer", 7, "slack:T1:U1", images=3)     # True: send it; False: told already
    log = QuestionLog(db)
    log.claim("engineer", sha, "tie", per_hour=6)          # False: over budget, or asked today already
"""
from __future__ import annotations

from layers.db import Database


class ReceiptBook:
    """The `receipts` table: each voter told at most once per promoted version. A receipt is claimed before
    it is sent (so two trainers never both send it) and released if Slack did not take it (so a later look
    tries again)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, model: str, version: int, principal: str, images: int) -> bool:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO receipts (model, version, principal, images) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING", (model, version, principal, images))
            return cur.rowcount == 1

    def release(self, model: str, version: int, principal: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM receipts WHERE model = %s AND version = %s AND principal = %s",
                        (model, version, principal))


class QuestionLog:
    """The `crowd_questions` table: images posted to the review channel for votes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, model: str, sha: str, reason: str, per_hour: int) -> bool:
        """Record a question about to be asked: refused past `per_hour` questions in the last hour, or when
        this image was asked about in the last day. One transaction, under a lock per model: two trainers
        never both ask."""
        with self.db.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('crowd_questions:' || %s))", (model,))
            cur.execute("SELECT count(*) FILTER (WHERE asked_at > now() - interval '1 hour'), "
                        "count(*) FILTER (WHERE image_sha256 = %s AND asked_at > now() - interval '1 day') "
                        "FROM crowd_questions WHERE model = %s", (sha, model))
            last_hour, same_today = cur.fetchone()
            if last_hour >= per_hour or same_today:
                return False
            cur.execute("INSERT INTO crowd_questions (model, image_sha256, reason) VALUES (%s, %s, %s)",
                        (model, sha, reason))
            return True

    def release(self, model: str, sha: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM crowd_questions WHERE model = %s AND image_sha256 = %s "
                        "AND asked_at > now() - interval '1 minute'", (model, sha))
