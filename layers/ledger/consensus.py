"""Label consensus over each principal's latest vote per image. Pure and table-tested.

Example:
    agreed = decide([LatestVote("ab..", "images/ab..", "engineer", "slack:T:U1", "v1", 1), ...], min_votes=1)
    agreed.accepted["ab.."]["label"]        # "engineer"

Rules: the label with a strict majority of the principals' latest votes wins; a tie is quarantined (reported,
never trained on); an image with fewer than `min_votes` votes waits (neither accepted nor quarantined).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from layers.ledger.votes import LatestVote


@dataclass
class Consensus:
    accepted: dict[str, dict] = field(default_factory=dict)     # sha -> {"label", "votes", "key", "vote_ids"}
    quarantined: dict[str, dict] = field(default_factory=dict)  # sha -> {"votes", "key", "vote_ids", "reason"}
    waiting: dict[str, dict] = field(default_factory=dict)      # sha -> {"votes", "key", "vote_ids"}: too few votes

    def to_json(self) -> dict:
        return {"accepted": self.accepted, "quarantined": self.quarantined, "waiting": self.waiting}


def decide(latest: Iterable["LatestVote"], min_votes: int = 1) -> Consensus:
    by_image: dict[str, list] = {}
    for v in latest:
        by_image.setdefault(v.image_sha256, []).append(v)
    out = Consensus()
    for sha, votes in sorted(by_image.items()):
        counts = Counter(v.label for v in votes)
        ranked = counts.most_common()
        info = {"votes": dict(sorted(counts.items())), "key": votes[0].image_key,
                "vote_ids": sorted(v.vote_id for v in votes)}
        if len(votes) < min_votes:
            out.waiting[sha] = info
        elif len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            out.quarantined[sha] = {**info, "reason": "tie between labels"}
        else:
            out.accepted[sha] = {**info, "label": ranked[0][0]}
    return out
