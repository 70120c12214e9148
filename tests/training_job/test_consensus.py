"""Label consensus is a pure function: table-tested."""
import pytest

from training_job.data import consensus

A, B = "a" * 64, "b" * 64


def fx(sha, label, user, t):
    return {"image_sha256": sha, "image_key": f"images/{sha}", "label": label, "user": user, "created_at_ms": t,
            "fix_id": f"{sha[:4]}-{label}-{user}"}


@pytest.mark.parametrize("votes, accepted, quarantined", [
    ([fx(A, "engineer", "u1", 1)], {A: "engineer"}, set()),
    ([fx(A, "engineer", "u1", 1), fx(A, "non_engineer", "u2", 2)], {}, {A}),                    # tie
    ([fx(A, "engineer", "u1", 1), fx(A, "non_engineer", "u2", 2), fx(A, "engineer", "u3", 3)], {A: "engineer"}, set()),
    ([fx(A, "engineer", "u1", 1), fx(A, "non_engineer", "u1", 2)], {A: "non_engineer"}, set()),  # a user's latest vote
    ([fx(A, "engineer", "u1", 1), fx(A, "engineer", "u1", 2)], {A: "engineer"}, set()),          # one user, one vote
    ([fx(A, "engineer", "u1", 1), fx(B, "non_engineer", "u1", 1), fx(B, "engineer", "u2", 2)], {A: "engineer"}, {B}),
])
def test_consensus(votes, accepted, quarantined):
    out = consensus(votes)
    assert {sha: a["label"] for sha, a in out.accepted.items()} == accepted
    assert set(out.quarantined) == quarantined
    for q in out.quarantined.values():
        assert q["reason"] and sum(q["votes"].values()) >= 2
