"""The `profiles` and `matches_shown` tables (docs/formats.md, "PostgreSQL").

Example:
    profiles = Profiles(db)
    profiles.upsert(principal, "Ada", sha, key, label, score, scores, versions)   # a new or replaced profile
    me = profiles.get(principal); profiles.opposite(me.label); profiles.shown_to(principal)
    profiles.mark_shown(principal, other, affinity); profiles.delete(principal)

IMPORTANT: a sign-up is one INSERT ... ON CONFLICT (principal) DO UPDATE: concurrent sign-ups never lose or
duplicate a profile, and re-signing up replaces the photo and the scores (and resets a confirmed side).
Deleting a profile deletes every match that involves it (ON DELETE CASCADE).
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from layers.db import Database
from layers.matching.rules import Profile

COLUMNS = "principal, display_name, photo_sha256, photo_key, label, score, confirmed, created_at, scores, versions"


def _row(r) -> Profile:
    return Profile(r[0], r[1], r[2].strip(), r[3], r[4], float(r[5]), bool(r[6]), r[7], r[8], list(r[9]))


class Profiles:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, principal: str, display_name: str, photo_sha256: str, photo_key: str, label: str,
               score: float, scores: dict, versions: list[int]) -> tuple[Profile, str | None]:
        """The profile as stored, and the photo key it replaced (None when new or the same photo)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT photo_key FROM profiles WHERE principal = %s FOR UPDATE", (principal,))
            before = cur.fetchone()
            cur.execute(
                f"INSERT INTO profiles (principal, display_name, photo_sha256, photo_key, label, score, scores, versions) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (principal) DO UPDATE SET "
                f"display_name = EXCLUDED.display_name, photo_sha256 = EXCLUDED.photo_sha256, "
                f"photo_key = EXCLUDED.photo_key, label = EXCLUDED.label, score = EXCLUDED.score, confirmed = false, "
                f"scores = EXCLUDED.scores, versions = EXCLUDED.versions, updated_at = now() RETURNING {COLUMNS}",
                (principal, display_name, photo_sha256, photo_key, label, score, Jsonb(scores), versions))
            profile = _row(cur.fetchone())
        replaced = before[0] if before and before[0] != photo_key else None
        return profile, replaced

    def get(self, principal: str) -> Profile | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {COLUMNS} FROM profiles WHERE principal = %s", (principal,))
            row = cur.fetchone()
        return _row(row) if row else None

    def confirm(self, principal: str, label: str) -> Profile | None:
        """The user says which side they are on (their photo's vote goes to the ledger as well)."""
        with self.db.transaction() as cur:
            cur.execute(f"UPDATE profiles SET label = %s, confirmed = true, updated_at = now() WHERE principal = %s "
                        f"RETURNING {COLUMNS}", (label, principal))
            row = cur.fetchone()
        return _row(row) if row else None

    def others(self, principal: str, label: str) -> tuple[list[Profile], set[str]]:
        """The profiles of the other sides, and whom this viewer has been shown already (one snapshot)."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {COLUMNS} FROM profiles WHERE label <> %s AND principal <> %s", (label, principal))
            rows = [_row(r) for r in cur.fetchall()]
            cur.execute("SELECT shown FROM matches_shown WHERE viewer = %s", (principal,))
            shown = {r[0] for r in cur.fetchall()}
        return rows, shown

    def mark_shown(self, viewer: str, shown: str, score: float) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO matches_shown (viewer, shown, score) VALUES (%s, %s, %s) "
                        "ON CONFLICT (viewer, shown) DO NOTHING", (viewer, shown, score))

    def delete(self, principal: str) -> Profile | None:
        """Delete the profile and (cascade) every match that involves it; the deleted profile, if any."""
        with self.db.transaction() as cur:
            cur.execute(f"DELETE FROM profiles WHERE principal = %s RETURNING {COLUMNS}", (principal,))
            row = cur.fetchone()
        return _row(row) if row else None

    def photo_in_use(self, photo_key: str, excluding: str) -> bool:
        """Whether a profile other than `excluding`'s has this photo."""
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM profiles WHERE photo_key = %s AND principal <> %s LIMIT 1",
                        (photo_key, excluding))
            return cur.fetchone() is not None

    def count(self) -> int:
        with self.db.transaction() as cur:
            cur.execute("SELECT count(*) FROM profiles")
            return cur.fetchone()[0]
