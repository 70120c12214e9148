"""Label consensus over each principal's latest vote per image, weighed by how reliable each voter is. Pure.

Example:
    agreed = decide(latest_votes, min_votes=1, known={"ab..": "engineer"}, labels=("engineer", "non_engineer"))
    agreed.accepted["cd.."]["label"], agreed.accepted["cd.."]["posterior"]     # "engineer", 0.93
    agreed.voters["slack:T:U1"].accuracy                                      # 0.88, estimated

The model (Dawid & Skene 1979, in its "one-coin" form): every voter j answers right with probability a_j, and
wrong otherwise, spread evenly over the other classes. EM over the whole ledger alternates:
  * E: each image's posterior over classes from the votes on it, each vote weighing log(a_j (K-1) / (1 - a_j));
    an image whose true class is known (a "gold" image of the dataset) is pinned to it;
  * M: a_j from how often j agrees with the posterior of the images j voted on that someone else voted on too,
    or whose answer is known: an image only j voted on says nothing about j, so a voter who votes alone cannot
    vouch for themselves. A Beta prior (PRIOR_RIGHT, PRIOR_WRONG pseudo-votes) keeps a voter nobody can check
    yet at PRIOR_ACCURACY. Gold votes count GOLD_WEIGHT times: they are the only evidence a colluding crowd
    cannot fake.
Majority voting is the special case of equal accuracies (`reliability=False`).

Rules, in order: a known-answer image is gold (it checks its voters, and is never trained on as a fix); an image with fewer than `min_votes` voters waits; the same weight for two classes is a tie;
a winning class whose posterior is under `min_posterior` is quarantined (both are reported, never trained on);
the rest are accepted. A voter whose estimated accuracy is at or below chance (1/K) weighs nothing at all.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    from layers.ledger.votes import LatestVote, LedgerSnapshot

PRIOR_RIGHT, PRIOR_WRONG = 3.0, 1.0      # Beta pseudo-votes: an unchecked voter is trusted at 0.75
PRIOR_ACCURACY = PRIOR_RIGHT / (PRIOR_RIGHT + PRIOR_WRONG)
GOLD_WEIGHT = 3.0                        # a vote on a known-answer image counts this many times in a_j
MIN_POSTERIOR = 0.6                      # below this the winning class is too unsure to train on
MAX_ACCURACY = 0.99                      # no voter is ever certain (keeps every weight finite)
ITERATIONS = 50
TIE = 1e-9


@dataclass(frozen=True)
class VoterEstimate:
    principal: str
    accuracy: float          # estimated probability that this voter's vote is right
    weight: float            # log-odds one vote adds to its class (0: at or below chance, no effect)
    votes: int               # latest votes, one per image
    checked: float           # how much evidence the estimate rests on: other voters' or gold's, in votes
    gold: int                # votes on known-answer images
    gold_right: int

    def to_json(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Consensus:
    accepted: dict[str, dict] = field(default_factory=dict)     # sha -> {"label", "posterior", "votes", "key", "vote_ids", "first_seq"}
    quarantined: dict[str, dict] = field(default_factory=dict)  # sha -> {..., "reason"}
    waiting: dict[str, dict] = field(default_factory=dict)      # sha -> {...}: too few votes yet
    gold: dict[str, dict] = field(default_factory=dict)         # sha -> {..., "known"}: known-answer images,
                                                                # which check the voters and are never a fix
    voters: dict[str, VoterEstimate] = field(default_factory=dict)
    method: str = "dawid-skene"

    def to_json(self) -> dict:
        return {"accepted": self.accepted, "quarantined": self.quarantined, "waiting": self.waiting,
                "gold": self.gold, "voters": {p: v.to_json() for p, v in sorted(self.voters.items())}, "method": self.method}


def weight_of(accuracy: float, classes: int) -> float:
    """The log-odds a vote of this accuracy adds to its class; 0 at or below chance."""
    a = min(accuracy, MAX_ACCURACY)
    return max(0.0, math.log(a * (classes - 1) / (1.0 - a)))


def decide(latest: Iterable["LatestVote"], min_votes: int = 1, known: Mapping[str, str] | None = None,
           labels: Iterable[str] | None = None, min_posterior: float = MIN_POSTERIOR,
           reliability: bool = True) -> Consensus:
    votes = list(latest)
    known = known or {}
    classes = sorted(set(labels or ()) | {v.label for v in votes} | set(known.values()))
    if len(classes) < 2:                 # without the label set, one class seen: there is at least one other
        classes.append("(another class)")
    k = len(classes)
    by_image: dict[str, list] = defaultdict(list)
    by_voter: dict[str, list] = defaultdict(list)
    for v in votes:
        by_image[v.image_sha256].append(v)
        by_voter[v.principal].append(v)
    accuracy = {p: PRIOR_ACCURACY for p in by_voter}

    weights: dict[str, float] = {}

    def scores(sha: str) -> dict[str, float]:
        s = dict.fromkeys(classes, 0.0)
        for v in by_image[sha]:
            s[v.label] += weights[v.principal]
        return s

    def reweigh() -> None:                    # a vote's weight, from its voter's current accuracy
        weights.update({p: weight_of(a, k) if reliability else 1.0 for p, a in accuracy.items()})

    def posterior(sha: str) -> dict[str, float]:
        if sha in known:
            return {c: float(c == known[sha]) for c in classes}
        s = scores(sha)
        top = max(s.values())
        e = {c: math.exp(x - top) for c, x in s.items()}
        total = sum(e.values())
        return {c: x / total for c, x in e.items()}

    # the votes that say something about their voter: on a gold image, or on one someone else voted on too
    checked_votes = {p: [v for v in mine if v.image_sha256 in known or len({o.principal for o in by_image[v.image_sha256]}) > 1]
                     for p, mine in by_voter.items()}
    checked: dict[str, float] = {}
    for _ in range(ITERATIONS if reliability else 0):
        reweigh()
        post = {sha: posterior(sha) for sha in by_image}                       # E: each image, once
        new = {}
        for p, mine in checked_votes.items():                                  # M: each voter's accuracy
            right = sum((GOLD_WEIGHT if v.image_sha256 in known else 1.0) * post[v.image_sha256][v.label] for v in mine)
            total = sum(GOLD_WEIGHT if v.image_sha256 in known else 1.0 for v in mine)
            new[p] = (PRIOR_RIGHT + right) / (PRIOR_RIGHT + PRIOR_WRONG + total)
            checked[p] = total
        moved = max((abs(new[p] - accuracy[p]) for p in new), default=0.0)
        accuracy = new
        if moved < 1e-6:
            break
    reweigh()

    out = Consensus(method="dawid-skene" if reliability else "majority")
    for p, mine in sorted(by_voter.items()):
        gold = [v for v in mine if v.image_sha256 in known]
        out.voters[p] = VoterEstimate(principal=p, accuracy=accuracy[p], weight=weight_of(accuracy[p], k),
                                      votes=len(mine), checked=round(checked.get(p, 0.0), 3), gold=len(gold),
                                      gold_right=sum(v.label == known[v.image_sha256] for v in gold))
    for sha, image_votes in sorted(by_image.items()):
        counts = Counter(v.label for v in image_votes)
        info = {"votes": dict(sorted(counts.items())), "key": image_votes[0].image_key,
                "vote_ids": sorted(v.vote_id for v in image_votes),
                "first_seq": min(v.seq for v in image_votes)}
        if sha in known:
            out.gold[sha] = {**info, "known": known[sha]}
            continue
        if len(image_votes) < min_votes:
            out.waiting[sha] = info
            continue
        s = scores(sha)
        ranked = sorted(s.items(), key=lambda kv: -kv[1])
        best, p_best = max(posterior(sha).items(), key=lambda kv: kv[1])
        info["posterior"] = round(p_best, 4)
        if ranked[0][1] - ranked[1][1] <= TIE:
            out.quarantined[sha] = {**info, "reason": "tie between labels" if ranked[0][1] > 0
                                    else "no vote from a voter above chance"}
        elif p_best < min_posterior:
            out.quarantined[sha] = {**info, "reason": f"posterior {p_best:.2f} < {min_posterior}"}
        else:
            out.accepted[sha] = {**info, "label": best}
    return out


def of_ledger(snap: "LedgerSnapshot", known: Mapping[str, str], min_votes: int = 1,
              min_posterior: float = MIN_POSTERIOR) -> Consensus:
    """THE consensus of the ledger: what the trainer trains on, the canary judges with, and /models compare
    and voters show. Dawid-Skene over every voter's latest votes, with the dataset's images as gold (`known`:
    sha256 -> label, layers.ledger.GoldAnswers) and its classes as the label set."""
    return decide(snap.latest, min_votes, known=known, labels=sorted(set(known.values())), min_posterior=min_posterior)
