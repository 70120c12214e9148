"""The `profiles` and `matches_shown` tables (docs/formats.md, "PostgreSQL").

Example:
    profiles = Profiles(db)
    profiles.upsert(principal, "Ada", sha, key, label, score, scores, versions)   # a new or replaced profile
    me = profiles.get(principal); best, remaining = profiles.best_for(me, ["non_engineer"])
    profiles.mark_shown(principal, other, affinity); profiles.delete(principal)

IMPORTANT: a sign-up is one INSERT ... ON CONFLICT (principal) DO UPDATE: concurrent sign-ups never lose or
duplicate a profile, and re-signing up replaces the photo and the scores (and resets a confirmed side).
Deleting a profile deletes every match that involves it (ON DELETE CASCADE).
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from layers.db import Database
from layers.matching.rules import REMAINING_CAP, Profile

COLUMNS = ("principal, display_name, photo_sha256, photo_key, label, score, confirmed, created_at, scores, versions, "
           "public_id::text")


def _row(r) -> Profile:
    return Profile(r[0], r[1], r[2].strip(), r[3], r[4], float(r[5]), bool(r[6]), r[7], r[8], list(r[9]), r[10])


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

    def best_for(self, viewer: Profile, sides: list[str]) -> tuple[Profile | None, int]:
        """The viewer's best unseen match on the other `sides`, ranked as layers.matching.rules ranks them
        (score nearest 1 - the viewer's, then the earlier sign-up, then the smaller principal), and how many
        others remain (at most REMAINING_CAP). Each side is two walks of the (label, score) index, up and down
        from the target score, so a match reads a few rows whatever the number of profiles."""
        target = 1.0 - viewer.score
        unseen = "NOT EXISTS (SELECT 1 FROM matches_shown m WHERE m.viewer = %(me)s AND m.shown = p.principal)"
        walks = []
        for i, side in enumerate(sides):
            for op, order in ((">=", "ASC"), ("<", "DESC")):
                walks.append(f"(SELECT {COLUMNS}, abs(score - %(t)s) AS distance FROM profiles p "
                             f"WHERE label = %(side{i})s AND score {op} %(t)s AND principal <> %(me)s AND {unseen} "
                             f"ORDER BY score {order}, created_at, principal LIMIT 1)")
        params = {"t": target, "me": viewer.principal, **{f"side{i}": s for i, s in enumerate(sides)}}
        with self.db.transaction() as cur:
            if not walks:
                return None, 0
            cur.execute(" UNION ALL ".join(walks) + " ORDER BY distance, created_at, principal LIMIT 1", params)
            row = cur.fetchone()
            cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM profiles p WHERE label = ANY(%(sides)s) "
                        f"AND principal <> %(me)s AND {unseen} LIMIT {REMAINING_CAP + 1}) AS left_",
                        {**params, "sides": list(sides)})
            left = cur.fetchone()[0]
        return (_row(row) if row else None), max(0, min(left, REMAINING_CAP + 1) - 1)

    def any_on(self, sides: list[str]) -> bool:
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM profiles WHERE label = ANY(%s) LIMIT 1", (list(sides),))
            return cur.fetchone() is not None

    def photo_keys(self) -> set[str]:
        """Every photo a profile references (for the sweeper)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT DISTINCT photo_key FROM profiles")
            return {r[0] for r in cur.fetchall()}

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
