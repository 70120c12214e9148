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


# -- Dawid-Skene: voters weighed by their estimated reliability ------------------------------------------
LABELS = ("engineer", "non_engineer")


def crowd(truth: dict[str, str], voters: dict[str, float], per_image: int, seed: int) -> list:
    """Each image voted on by `per_image` voters drawn at random; voter p is right with probability voters[p]
    (0.0: always wrong, 0.5: a coin)."""
    import random
    rng = random.Random(seed)
    out = []
    for sha, label in truth.items():
        for p in rng.sample(sorted(voters), per_image):
            right = rng.random() < voters[p]
            out.append(lv(sha, label if right else ("non_engineer" if label == "engineer" else "engineer"), p))
    return out


def images(n: int, seed: int) -> dict[str, str]:
    import hashlib
    return {hashlib.sha256(f"{seed}-{i}".encode()).hexdigest(): LABELS[i % 2] for i in range(n)}


def test_a_reliable_voter_outweighs_two_unreliable_ones_once_gold_has_checked_them():
    gold = images(6, seed=1)
    votes = [lv(sha, label, "good") for sha, label in gold.items()]
    votes += [lv(sha, label if i % 2 else ("non_engineer" if label == "engineer" else "engineer"), p)
              for i, (sha, label) in enumerate(gold.items()) for p in ("meh1", "meh2")]      # right half the time
    votes += [lv(A, "engineer", "good"), lv(A, "non_engineer", "meh1"), lv(A, "non_engineer", "meh2")]
    ds = decide(votes, known=gold, labels=LABELS)
    assert ds.accepted[A]["label"] == "engineer"                            # majority would say non_engineer
    assert decide(votes, known=gold, labels=LABELS, reliability=False).accepted[A]["label"] == "non_engineer"
    assert ds.voters["good"].accuracy > 0.85 > 0.6 > ds.voters["meh1"].accuracy
    assert ds.voters["good"].gold == 6 and ds.voters["good"].gold_right == 6
    assert set(ds.gold) == set(gold) and not set(gold) & set(ds.accepted)    # gold checks voters, never a fix


def test_a_voter_who_always_votes_wrong_on_gold_has_no_effect():
    gold = images(8, seed=2)
    flip = lambda l: "non_engineer" if l == "engineer" else "engineer"
    votes = [lv(sha, flip(label), "liar") for sha, label in gold.items()] + [lv(A, "engineer", "liar")]
    ds = decide(votes, known=gold, labels=LABELS)
    assert ds.voters["liar"].weight == 0.0 and ds.voters["liar"].accuracy < 0.5
    assert A in ds.quarantined and "no vote from a voter above chance" in ds.quarantined[A]["reason"]


def test_a_crowd_of_coins_trains_nothing_and_an_honest_crowd_is_recovered():
    truth = images(60, seed=3)
    gold = images(10, seed=4)
    for voters, expect_accepted in (({f"coin{i}": 0.5 for i in range(6)}, False),
                                    ({"a": 0.95, "b": 0.9, "c": 0.85, "d": 0.8, "e": 0.7, "adv": 0.0, "spam": 0.5}, True)):
        votes = crowd({**truth, **gold}, voters, per_image=3, seed=5)
        ds = decide(votes, known=gold, labels=LABELS)
        right = sum(ds.accepted[sha]["label"] == truth[sha] for sha in ds.accepted)
        majority = decide(votes, known=gold, labels=LABELS, reliability=False)
        right_mv = sum(majority.accepted[sha]["label"] == truth[sha] for sha in majority.accepted)
        if expect_accepted:                 # better labels than majority voting, and more of them right
            assert right / len(ds.accepted) >= 0.85 > right_mv / len(majority.accepted), (right, len(ds.accepted))
            assert right > right_mv
            assert ds.voters["adv"].weight == 0.0 and ds.voters["a"].accuracy > ds.voters["spam"].accuracy
        else:                               # a coin crowd: whatever it agrees on is no better than a coin
            assert right <= len(ds.accepted) * 0.65, (right, len(ds.accepted))


def test_a_lone_voter_cannot_vouch_for_themselves():
    """Votes nobody else cast check nothing: a lone voter stays at the prior, however many they cast."""
    votes = [lv(sha, label, "solo") for sha, label in images(50, seed=6).items()]
    ds = decide(votes, labels=LABELS)
    assert ds.voters["solo"].checked == 0 and ds.voters["solo"].accuracy == 0.75
