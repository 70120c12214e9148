"""The matching rules, pure: the other side only, never oneself or anyone shown before, the complementary
score first, ties in a fixed order; and the ensemble's membership and weights."""
from __future__ import annotations

from datetime import datetime, timedelta

from layers.matching.rules import Profile, affinity, candidates_for, explain, next_match
from layers.registry import ModelRoute
from layers.serving.ensemble import members

T0 = datetime(2026, 11, 28, 20, 0, 0)


def profile(name: str, label: str, score: float, minutes: int = 0) -> Profile:
    return Profile(f"api:t:{name}", name, "0" * 64, "profiles/x.jpg", label, score, False, T0 + timedelta(minutes=minutes),
                   {}, [1, 2])


def test_opposites_attract_by_complementary_scores():
    ada = profile("ada", "engineer", 0.9)
    people = [profile("bo", "non_engineer", 0.4), profile("cy", "non_engineer", 0.1), profile("di", "engineer", 0.95),
              profile("ed", "non_engineer", 0.3), ada]
    ranked = candidates_for(ada, people, shown=set())
    assert [m.profile.display_name for m in ranked] == ["cy", "ed", "bo"]        # never ada herself, never di
    assert ranked[0].affinity == affinity(0.9, 0.1) == 1.0
    assert "opposites attract" in explain(ada, ranked[0]) and "90% engineer" in explain(ada, ranked[0])


def test_already_shown_are_excluded_and_then_nobody_is_left():
    ada = profile("ada", "engineer", 0.9)
    people = [profile("bo", "non_engineer", 0.4), profile("cy", "non_engineer", 0.1)]
    assert next_match(ada, people, shown={"api:t:cy"}).profile.display_name == "bo"
    assert next_match(ada, people, shown={"api:t:cy", "api:t:bo"}) is None
    assert next_match(ada, [profile("di", "engineer", 0.6)], shown=set()) is None      # nobody of the other side


def test_ties_go_to_the_earlier_sign_up_then_the_smaller_principal():
    ada = profile("ada", "engineer", 0.8)
    people = [profile("zed", "non_engineer", 0.2, minutes=5), profile("yan", "non_engineer", 0.2, minutes=1),
              profile("xia", "non_engineer", 0.2, minutes=1)]
    assert [m.profile.display_name for m in candidates_for(ada, people, set())] == ["xia", "yan", "zed"]


def test_the_ensemble_is_the_control_documents_else_the_two_with_most_traffic():
    route = ModelRoute(weights={1: 90, 3: 10, 4: 0}, rendezvous=[1, 3, 4])
    assert members(route, {1, 3, 4}) == [1, 3]
    assert members(ModelRoute(weights={1: 100, 2: 0, 5: 0}), {1, 2, 5}) == [1, 5]     # newest among equals
    route.ensemble = [3, 4]
    assert members(route, {1, 3, 4}) == [3, 4]
    assert members(route, {1, 3}) == [1, 3]                # a named version not ready: the default, not half of it


def test_fix_accuracy_weighting():
    from types import SimpleNamespace
    from layers.serving.ensemble import weights_for
    loaded = lambda v, acc: SimpleNamespace(version=v, meta=SimpleNamespace(metrics={"fixes": {"accuracy": acc}}))
    assert weights_for([loaded(1, 0.9), loaded(2, 0.3)], "equal") == {1: 0.5, 2: 0.5}
    w = weights_for([loaded(1, 0.9), loaded(2, 0.3)], "fix-accuracy")
    assert abs(w[1] - 0.75) < 1e-9 and abs(w[2] - 0.25) < 1e-9
    w = weights_for([loaded(1, 0.8), loaded(2, None)], "fix-accuracy")           # unknown: the others' mean
    assert abs(w[1] - 0.5) < 1e-9


def test_the_database_ranks_as_the_rules_do(db, uid):
    """Profiles.best_for walks the (label, score) index; the pure rules are the reference. 120 profiles with
    ties (scores on a 0.05 grid, two sign-ups a minute): the viewer is shown everyone of the other side, in
    the rules' order, and `remaining` counts down."""
    import random
    from layers.matching.profiles import COLUMNS, Profiles, _row
    rng = random.Random(7)
    profiles, me = Profiles(db), f"api:t:{uid}-viewer"
    try:
        with db.transaction() as cur:
            for i in range(120):
                cur.execute("INSERT INTO profiles (principal, display_name, photo_sha256, photo_key, label, score, "
                            "scores, versions, created_at) VALUES (%s, %s, %s, 'profiles/x.jpg', %s, %s, '{}', '{1}', "
                            "timestamptz '2026-01-01' + make_interval(secs => %s))",
                            (f"api:t:{uid}-{i:03d}", f"p{i}", "0" * 64, rng.choice(["engineer", "non_engineer"]),
                             round(rng.randrange(21) * 0.05, 2), (i // 2) * 60))
        viewer, _ = profiles.upsert(me, "viewer", "0" * 64, "profiles/x.jpg", "engineer", 0.7, {}, [1])
        with db.transaction() as cur:      # the whole other side as it is now (other tests' profiles included)
            cur.execute(f"SELECT {COLUMNS} FROM profiles WHERE label = 'non_engineer'")
            everyone = [_row(r) for r in cur.fetchall()]
        expected = [m.profile.principal for m in candidates_for(viewer, everyone, shown=set())]
        got = []
        for _ in range(len(expected) + 1):
            best, remaining = profiles.best_for(viewer, ["non_engineer"])
            if best is None:
                break
            assert remaining == min(len(expected) - len(got) - 1, 1000)
            got.append(best.principal)
            profiles.mark_shown(me, best.principal, affinity(viewer.score, best.score))
        assert got == expected and len(got) >= 40
    finally:
        with db.transaction() as cur:      # the viewer, its matches (cascade) and the 120 profiles
            cur.execute("DELETE FROM profiles WHERE principal LIKE %s", (f"api:t:{uid}-%",))
