"""The data's ceiling (a classifier on the generator's cues) and the showcase samples chosen by those cues."""
from __future__ import annotations

import functools
import random

from training_job.ceiling import ceiling
from training_job.datasets import split_for
from layers.images import sha256_hex
from portraits.synth import ENGINEER_CUES, OTHER_CUES, samples, showcase


@functools.cache                 # drawing 400 portraits costs seconds of CPU: once for the module's tests
def split(n: int = 400):
    data = samples(n, seed=5)
    train = [(s.cues, s.label) for s in data if split_for(sha256_hex(s.jpeg)) == "train"]
    hold = [(s.cues, s.label) for s in data if split_for(sha256_hex(s.jpeg)) == "holdout"]
    return train, hold


def test_the_cues_nearly_decide_the_label():
    train, hold = split()
    result = ceiling(train, hold)
    assert result["n"] == len(hold) > 50
    assert 0.95 <= result["accuracy"] <= 1.0, result       # only the deliberately ambiguous portraits are lost


def test_cues_that_say_nothing_give_a_coin_toss():
    train, hold = split()
    rng = random.Random(0)
    shuffle = lambda part: [(cues, rng.choice(("engineer", "non_engineer"))) for cues, _ in part]
    assert ceiling(shuffle(train), shuffle(hold))["accuracy"] < 0.7


def test_no_cues_or_one_class_gives_no_ceiling():
    train, hold = split(40)
    assert ceiling([], hold) is None and ceiling(train, []) is None
    assert ceiling([(c, "engineer") for c, _ in train], hold) is None


def test_showcase_samples_are_chosen_by_their_cues():
    chosen = showcase()
    eng, other, mixed = chosen["engineer"], chosen["non_engineer"], chosen["ambiguous"]
    assert len(set(eng.cues) & set(ENGINEER_CUES)) >= 3 and not set(eng.cues) & set(OTHER_CUES)
    assert len(set(other.cues) & set(OTHER_CUES)) >= 3 and not set(other.cues) & set(ENGINEER_CUES)
    assert len(set(mixed.cues) & set(ENGINEER_CUES)) == 1 and len(set(mixed.cues) & set(OTHER_CUES)) == 1
    assert showcase()["engineer"].jpeg == eng.jpeg          # deterministic: the README's samples never change
