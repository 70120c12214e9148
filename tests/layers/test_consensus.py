"""Label consensus over each principal's latest vote is a pure function: table-tested."""
import pytest

from layers.ledger import LatestVote, decide

A, B = "a" * 64, "b" * 64


def lv(sha, label, principal):
    return LatestVote(sha, f"images/{sha}", label, principal, f"{sha[:4]}-{label}-{principal}", 0)


@pytest.mark.parametrize("votes, min_votes, accepted, quarantined, waiting", [
    ([lv(A, "engineer", "u1")], 1, {A: "engineer"}, set(), set()),
    ([lv(A, "engineer", "u1"), lv(A, "non_engineer", "u2")], 1, {}, {A}, set()),                        # tie
    ([lv(A, "engineer", "u1"), lv(A, "non_engineer", "u2"), lv(A, "engineer", "u3")], 1, {A: "engineer"}, set(), set()),
    ([lv(A, "engineer", "u1"), lv(B, "non_engineer", "u1"), lv(B, "engineer", "u2")], 1, {A: "engineer"}, {B}, set()),
    ([lv(A, "engineer", "u1"), lv(B, "engineer", "u1"), lv(B, "engineer", "u2")], 2, {B: "engineer"}, set(), {A}),  # too few
    ([], 1, {}, set(), set()),
])
def test_decide(votes, min_votes, accepted, quarantined, waiting):
    out = decide(votes, min_votes)
    assert {sha: a["label"] for sha, a in out.accepted.items()} == accepted
    assert set(out.quarantined) == quarantined and set(out.waiting) == waiting
    for q in out.quarantined.values():
        assert q["reason"] and sum(q["votes"].values()) >= 2
    for sha, a in out.accepted.items():
        assert a["votes"][a["label"]] * 2 > sum(a["votes"].values())          # a strict majority
