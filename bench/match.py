#!/usr/bin/env python3
"""The dating app's match with many profiles: p50/p99 of one `match` (the viewer, the best unseen profile of
the other side by the (label, score) index, the remaining count, marking it shown), against the way it was
done before in the same run (every profile of the other side read and ranked in Python), on 100,000
profiles. In a database of its own (`afterdark_bench` on the stack's PostgreSQL), filled once.

    PYTHONPATH=. python bench/match.py [--profiles 100000] [--viewers 200]
"""
from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

from psycopg import sql

from bench.predict_latency import record
from layers.config import DbSettings, Settings
from layers.db import Database, ensure_database
from layers.matching.profiles import COLUMNS, Profiles, _row
from layers.matching.rules import affinity, candidates_for


def fill(db: Database, n: int) -> None:
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM profiles WHERE principal LIKE 'bench:%%'")
        have = cur.fetchone()[0]
        if have >= n:
            return
        rng = random.Random(1)
        rows = [(f"bench:{i:07d}", f"p{i}", f"{i:064x}", f"profiles/{i:064x}.jpg",
                 "engineer" if rng.random() < 0.5 else "non_engineer", rng.random()) for i in range(have, n)]
        with cur.copy("COPY profiles (principal, display_name, photo_sha256, photo_key, label, score, scores, versions) "
                      "FROM STDIN") as copy:
            for r in rows:
                copy.write_row((*r, "{}", "{1}"))
        cur.execute("ANALYZE profiles")


def old_way(profiles: Profiles, viewer) -> object:
    """What match did before: every profile of the other side, ranked in Python."""
    with profiles.db.transaction() as cur:
        cur.execute(f"SELECT {COLUMNS} FROM profiles WHERE label <> %s AND principal <> %s", (viewer.label, viewer.principal))
        others = [_row(r) for r in cur.fetchall()]
        cur.execute("SELECT shown FROM matches_shown WHERE viewer = %s", (viewer.principal,))
        shown = {r[0] for r in cur.fetchall()}
    ranked = candidates_for(viewer, others, shown)
    return ranked[0] if ranked else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", type=int, default=100_000)
    ap.add_argument("--viewers", type=int, default=200)
    ap.add_argument("--old-viewers", type=int, default=20, help="the old way is slow: fewer calls")
    args = ap.parse_args(argv)
    url = Settings.from_env().db.url.rsplit("/", 1)[0] + "/afterdark_bench"
    ensure_database(url)
    db = Database(DbSettings(url=url))
    t0 = time.perf_counter()
    fill(db, args.profiles)
    filled = time.perf_counter() - t0
    profiles = Profiles(db)
    with db.transaction() as cur:
        cur.execute("DELETE FROM matches_shown")
        cur.execute(sql.SQL("SELECT count(*) FROM profiles"))
        total = cur.fetchone()[0]
    rng = random.Random(2)
    viewers = [profiles.get(f"bench:{rng.randrange(args.profiles):07d}") for _ in range(args.viewers)]
    new, answers = [], []
    for v in viewers:
        t = time.perf_counter()
        me = profiles.get(v.principal)
        best, remaining = profiles.best_for(me, [s for s in ("engineer", "non_engineer") if s != me.label])
        profiles.mark_shown(me.principal, best.principal, affinity(me.score, best.score))
        new.append((time.perf_counter() - t) * 1000)
        answers.append(best.principal)
    old = []
    for v in viewers[:args.old_viewers]:
        t = time.perf_counter()
        old_way(profiles, profiles.get(v.principal))
        old.append((time.perf_counter() - t) * 1000)
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]
    lines = [f"\n## Dating-app match on {total:,} profiles (bench/match.py, {time.strftime('%Y-%m-%d')}, "
             f"{platform.machine()}, PostgreSQL of `make run`)\n",
             f"{args.viewers} matches by random viewers (each: read the viewer, the best unseen profile of the other "
             f"side, the remaining count up to 1,000, mark it shown), one at a time; the old way (every profile of "
             f"the other side read and ranked in Python) on {args.old_viewers} of them, in the same run. "
             f"Filling took {filled:.0f} s.\n",
             "| match | p50 | p99 | mean |", "|---|---|---|---|",
             f"| ranked in SQL, by the (label, score) index | {statistics.median(new):.2f} ms | {q(new, 0.99):.2f} ms | {statistics.mean(new):.2f} ms |",
             f"| before: all of the other side ranked in Python | {statistics.median(old):.0f} ms | {q(old, 0.99):.0f} ms | {statistics.mean(old):.0f} ms |",
             "", f"Ratio of p50s: {statistics.median(old) / statistics.median(new):.0f}x. Goal: p50 <= 20 ms: "
             f"{'met' if statistics.median(new) <= 20 else 'NOT met'}."]
    record(lines)
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
