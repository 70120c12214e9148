"""The DataOps audit log: every applied change to a model's route, and every refused attempt, in PostgreSQL
(table `audit_log`, migration 5; docs/formats.md).

Example:
    log = AuditLog(db)
    log.append([AuditEntry(model="engineer", actor="slack:T1:U1", change="promote v3", revision=12,
                           before={...route...}, after={...route...})])
    page = log.page("engineer", limit=20)                 # newest first; page[-1].id is the next page's cursor
    last = log.last_applied("engineer")                   # what `rollback` undoes (refusals never count)

Why PostgreSQL and not objects beside the control document: one indexed query answers `history` and
`rollback` whatever the log holds, and refused attempts (written by anyone who can call /models) can neither
hide the applied changes from `rollback` nor make `history` read thousands of objects.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Protocol

if TYPE_CHECKING:
    from layers.db import Database


@dataclass(frozen=True)
class AuditEntry:
    model: str                     # the model whose route changed ("" for a change to the document alone)
    actor: str                     # the principal: slack:T:U, api:<client>, system:auto-promotion, training-job
    change: str                    # one line: what was done, or what was tried
    revision: int                  # the control document's revision it made (or saw, when refused)
    refused: str | None = None     # why it was refused; None for an applied change
    before: dict | None = None     # the model's route before an applied change (what rollback restores)...
    after: dict | None = None      # ...and after it
    at: str = ""                   # ISO 8601, UTC: the database's clock at the insert
    id: int | None = None          # ascending: the cursor of `page`

    def summary(self) -> dict:
        return {"id": self.id, "at": self.at, "actor": self.actor, "change": self.change, "revision": self.revision,
                "refused": self.refused}


class AuditTrail(Protocol):
    """What the registry needs of an audit log (AuditLog; tests/doubles.py has one in memory)."""
    def append(self, entries: Iterable[AuditEntry]) -> None: ...
    def page(self, model: str, limit: int = 20, before_id: int | None = None) -> list[AuditEntry]: ...
    def last_applied(self, model: str) -> AuditEntry | None: ...


COLUMNS = "id, model, actor, change, revision, refused, before, after, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


class AuditLog:
    def __init__(self, db: "Database") -> None:
        self.db = db

    def append(self, entries: Iterable[AuditEntry]) -> None:
        with self.db.transaction() as cur:
            for e in entries:
                cur.execute("INSERT INTO audit_log (model, actor, change, revision, refused, before, after) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (e.model, e.actor, e.change, e.revision, e.refused,
                             None if e.before is None else json.dumps(e.before),
                             None if e.after is None else json.dumps(e.after)))

    def page(self, model: str, limit: int = 20, before_id: int | None = None) -> list[AuditEntry]:
        """This model's entries, newest first: at most `limit`, older than the entry `before_id` when given."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {COLUMNS} FROM audit_log WHERE model = %s AND id < %s ORDER BY id DESC LIMIT %s",
                        (model, before_id if before_id is not None else 2**62, limit))
            return [_entry(row) for row in cur.fetchall()]

    def last_applied(self, model: str) -> AuditEntry | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {COLUMNS} FROM audit_log WHERE model = %s AND refused IS NULL ORDER BY id DESC LIMIT 1",
                        (model,))
            row = cur.fetchone()
        return _entry(row) if row else None


def _entry(row) -> AuditEntry:
    id_, model, actor, change, revision, refused, before, after, at = row
    return AuditEntry(model=model, actor=actor, change=change, revision=revision, refused=refused, before=before,
                      after=after, at=at, id=id_)
