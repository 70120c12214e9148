"""The evaluation split and the paired sequential test: pure, table-tested, with their error rates measured."""
import hashlib
import random

import pytest

from layers.analysis.paired import evidence, mcnemar_p, verdict, wilson
from layers.ledger import Consensus, split_of


def sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def test_the_split_is_deterministic_and_about_a_fifth():
    shas = [sha(i) for i in range(5000)]
    first = [split_of(s) for s in shas]
    assert first == [split_of(s) for s in shas]
    assert 0.18 < first.count("evaluation") / len(shas) < 0.22
    assert all(split_of(s, fraction=0.0) == "train" for s in shas[:100])


def test_an_evaluation_image_is_never_trained_on():
    from training_job.examples import examples
    accepted = {sha(i): {"label": "engineer", "key": f"images/{sha(i)}"} for i in range(200)}
    exs = examples([], Consensus(accepted=accepted))
    for e in exs:
        assert e.split == ("evaluation" if split_of(e.sha256) == "evaluation" else "train")
    assert {e.split for e in exs} == {"train", "evaluation"}


@pytest.mark.parametrize("pairs, decision", [
    ([(True, False)] * 7, "promote"),                      # 7 discordant pairs, all for the canary: LR 31.9
    ([(True, False)] * 6, "wait"),                         # 6 are not enough at alpha 0.05 (LR 18.1)
    ([(True, True)] * 5 + [(False, False)] * 5, "wait"),   # concordant images carry no evidence
    ([(False, True)] * 7, "rollback"),                     # worse
    ([(True, False), (False, True)] * 10, "rollback"),     # 20 images, the budget (20), undecided
])
def test_the_verdict_on_constructed_cases(pairs, decision):
    got, why = verdict(evidence(pairs), alpha=0.05, max_samples=20)
    assert got == decision, why


def test_a_promotion_also_needs_the_hold_out_accuracy_not_to_drop_beyond_noise():
    ev = evidence([(True, False)] * 10)
    assert verdict(ev, 0.05, 100, holdout=(0.90, 0.91, 500))[0] == "promote"        # within noise
    got, why = verdict(ev, 0.05, 100, holdout=(0.85, 0.91, 500))
    assert got == "rollback" and "hold-out" in why


def test_the_sequential_test_keeps_its_error_rate_under_repeated_looks():
    """Under H0 (each discordant pair a fair coin), looking after every pair up to 100 pairs: the mSPRT
    promotes in at most alpha of the runs; a fixed-n McNemar test looked at the same way does not."""
    alpha, runs, looks = 0.05, 400, 100
    rng = random.Random(11)
    msprt = naive = 0
    for _ in range(runs):
        b = c = 0
        hit_m = hit_n = False
        for _ in range(looks):
            if rng.random() < 0.5:
                b += 1
            else:
                c += 1
            ev = evidence([(True, False)] * b + [(False, True)] * c)
            hit_m |= ev.lr_better >= 1 / alpha
            hit_n |= mcnemar_p(b, c) < alpha
        msprt += hit_m
        naive += hit_n
    assert msprt / runs <= alpha, msprt / runs
    assert naive / runs > alpha, naive / runs               # why the test must be sequential


def test_wilson_intervals():
    assert wilson(0, 0) is None
    lo, hi = wilson(8, 10)
    assert lo < 0.8 < hi and 0.0 <= lo and hi <= 1.0
    assert wilson(10, 10)[1] == 1.0
