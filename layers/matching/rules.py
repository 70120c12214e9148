"""The matching rules ("opposites attract"), pure: who is shown to whom, in which order, and why.

    e = a profile's ensemble probability of being an engineer (`score`)
    affinity(viewer, candidate) = 1 - |e_viewer + e_candidate - 1|

The best partner of someone who is 90% engineer is someone who is 10% engineer (affinity 1.0); a borderline
engineer (55%) is best paired with a borderline non-engineer (45%). Only the other side is a candidate,
never the viewer, never anyone already shown to the viewer. Ties go to the profile that signed up earlier,
then to the smaller principal, so the order is the same on every replica and every run.

Example:
    best = next_match(viewer, candidates, shown={"api:local:bo"})   # a Match, or None
    best.affinity, best.profile.display_name, explain(viewer, best)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


REMAINING_CAP = 1000          # a match's `remaining` counts at most this many: an exact count would scan a side


@dataclass(frozen=True)
class Profile:
    principal: str
    display_name: str
    photo_sha256: str
    photo_key: str
    label: str
    score: float                   # the ensemble's probability of "engineer"
    confirmed: bool
    created_at: datetime
    scores: dict
    versions: list[int]
    public_id: str = ""            # what others see of this profile: never the principal


@dataclass(frozen=True)
class Match:
    profile: Profile
    affinity: float


def affinity(viewer_score: float, candidate_score: float) -> float:
    return round(1.0 - abs(viewer_score + candidate_score - 1.0), 6)


def candidates_for(viewer: Profile, profiles: list[Profile], shown: set[str]) -> list[Match]:
    """Everyone the viewer may still be shown, best first: the reference for the database's ranking
    (layers.matching.profiles.Profiles.best_for ranks the same way with an index, and is tested against it)."""
    out = [Match(p, affinity(viewer.score, p.score)) for p in profiles
           if p.principal != viewer.principal and p.label != viewer.label and p.principal not in shown]
    target = 1.0 - viewer.score                  # the same arithmetic as the database's, so ties break alike
    return sorted(out, key=lambda m: (abs(m.profile.score - target), m.profile.created_at, m.profile.principal))


def next_match(viewer: Profile, profiles: list[Profile], shown: set[str]) -> Match | None:
    ranked = candidates_for(viewer, profiles, shown)
    return ranked[0] if ranked else None


def side(score: float) -> str:
    return f"{score:.0%} engineer"


def explain(viewer: Profile, match: Match) -> str:
    """One line on why these two."""
    other = match.profile
    return (f"You are {side(viewer.score)}, {other.display_name} is {side(other.score)}: "
            f"opposites attract (affinity {match.affinity:.2f} = 1 - |{viewer.score:.2f} + {other.score:.2f} - 1|).")
