"""Slack After Dark, the dating app: sign up with a photo, get scored by two live models, meet the other side.

Example:
    app = AfterDark(ensemble, Profiles(db), store, recorder, links, labels=("engineer", "non_engineer"))
    signed = app.signup("api:local:ada", jpeg_bytes, "Ada")      # Signup(profile, score, replaced)
    found = app.match("api:local:ada")                           # Found(viewer, match | None, why_none, remaining)
    app.confirm("api:local:ada", "engineer", key="trigger:…")   # the side, also a vote for the photo
    app.delete("api:local:ada")                                  # Deleted(...): what went, what stayed and why

What is stored (README, "Slack After Dark: your data"):
  * profiles/<sha256>.jpg: the photo, re-encoded (at most 512 px, no metadata); deleted with the profile unless
    another profile has the very same photo;
  * a row in `profiles` and the rows in `matches_shown` that involve the profile (deleted with it);
  * images/<sha256>: only when the user confirmed their side with the button, which is a vote on that photo.
    Votes are never deleted (the ledger keeps every acknowledged vote), so that copy stays.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from layers.errors import AfterDarkError, BadInput, NotFound
from layers.ledger.recorder import VoteReceipt, VoteRecorder
from layers.ledger.limits import RateLimiter
from layers.images import profile_jpeg, sha256_hex
from layers.matching.profiles import Profiles
from layers.matching.rules import Match, Profile, affinity, explain
from layers.edge.media import MediaLinks
from layers.registry import image_key
from layers.serving.ensemble import Ensemble, EnsembleScore
from layers.store import BlobStore

PHOTO_LINK_TTL_S = 600      # 10 minutes (media links elsewhere last MEDIA_TTL_S)
NAME = re.compile(r"^[\w .'\-]{1,40}$")


@dataclass(frozen=True)
class Signup:
    profile: Profile
    score: EnsembleScore
    replaced_photo: bool


@dataclass(frozen=True)
class Found:
    viewer: Profile
    match: Match | None
    why_none: str | None            # nobody-opposite | nobody-left, when match is None
    remaining: int                  # candidates still unseen after this one


@dataclass(frozen=True)
class Deleted:
    principal: str
    profile: bool
    photo: str                      # deleted | kept: another profile uses it | none
    vote_copy: str                  # kept: it is a vote | none


def photo_key(sha: str) -> str:
    return f"profiles/{sha}.jpg"


class AfterDark:
    def __init__(self, ensemble: Ensemble, profiles: Profiles, store: BlobStore, recorder: VoteRecorder,
                 links: MediaLinks, labels: tuple[str, ...], max_pixels: int, limiter: RateLimiter | None = None) -> None:
        self.ensemble, self.profiles, self.store, self.recorder = ensemble, profiles, store, recorder
        self.links, self.labels, self.max_pixels, self.limiter = links, labels, max_pixels, limiter

    def signup(self, principal: str, data: bytes, name: str | None) -> Signup:
        if name is not None and not isinstance(name, str):
            raise BadInput("name must be a string")
        name = (name or principal.rsplit(":", 1)[-1]).strip()
        if not NAME.fullmatch(name):
            raise BadInput("a display name is 1 to 40 letters, digits, spaces and . ' - _")
        if self.limiter is not None:                 # each sign-up scores a photo and writes one: counted
            self.limiter.hit(principal, "signup")
        photo = profile_jpeg(data, max_pixels=self.max_pixels)        # NotAnImage / TooLarge: 4xx, nothing kept
        score = self.ensemble.score(photo)
        sha = sha256_hex(photo)
        self.store.put_if_absent(photo_key(sha), photo, content_type="image/jpeg")
        profile, replaced = self.profiles.upsert(principal, name, sha, photo_key(sha), score.label,
                                                 score.average.get(self.labels[0], 0.0), score.to_json(), score.versions)
        self.store.put_if_absent(photo_key(sha), photo, content_type="image/jpeg")   # swept meanwhile? back
        if replaced:
            self._drop_photo(replaced, principal)
        return Signup(profile, score, replaced_photo=bool(replaced))

    def me(self, principal: str) -> Profile:
        profile = self.profiles.get(principal)
        if profile is None:
            raise NotFound("you have no profile yet: sign up with a photo (`/afterdark signup PHOTO_URL [name]`)")
        return profile

    def match(self, principal: str) -> Found:
        """The best unseen match of the other side, ranked in the database; it is remembered as shown."""
        viewer = self.me(principal)
        sides = [label for label in self.labels if label != viewer.label]
        best, remaining = self.profiles.best_for(viewer, sides)
        if best is None:
            return Found(viewer, None, "nobody-left" if self.profiles.any_on(sides) else "nobody-opposite", 0)
        found = Match(best, affinity(viewer.score, best.score))
        self.profiles.mark_shown(principal, best.principal, found.affinity)
        return Found(viewer, found, None, remaining)

    def confirm(self, principal: str, label: str, photo_sha256: str, key: str) -> tuple[Profile, VoteReceipt]:
        """The user's own side, from the button under an unsure score: it sets the profile's side and is a
        vote (source `button`) on the photo, like any other."""
        profile = self.me(principal)
        if profile.photo_sha256 != photo_sha256:
            raise BadInput("that photo was replaced by a newer sign-up; confirm the new one")
        label = self.recorder.admit(principal, label)
        photo = self.store.get(profile.photo_key).body
        self.store.put_if_absent(image_key(photo_sha256), photo)       # a vote references images/<sha256>
        receipt = self.recorder.record_stored(photo_sha256, label, principal, source="button", key=key)
        return self.profiles.confirm(principal, label) or profile, receipt

    def delete(self, principal: str) -> Deleted:
        """The photo goes first, then the profile and its matches: if the process dies between the two, the
        profile is still there and a retried delete finishes; the other order could leave the photo of a
        deleted profile behind, with nothing left pointing at it to delete it by."""
        profile = self.profiles.get(principal)
        if profile is None:
            return Deleted(principal, False, "none", "none")
        photo = self._drop_photo(profile.photo_key, principal)
        if self.profiles.delete(principal) is None:             # a concurrent delete got there first
            return Deleted(principal, False, photo, "none")
        vote_copy = "kept: it is a vote" if self.store.exists(image_key(profile.photo_sha256)) else "none"
        return Deleted(principal, True, photo, vote_copy)

    def photo_url(self, profile: Profile) -> str | None:
        """A link to the profile's photo that works for PHOTO_LINK_TTL_S: a card's photo is for looking at
        now, not a permanent address anyone the card is forwarded to can use."""
        try:
            return self.links.url(profile.photo_key, ttl_s=PHOTO_LINK_TTL_S)
        except AfterDarkError:               # no signing key configured: the card goes without the photo
            return None

    def _drop_photo(self, key: str, principal: str) -> str:
        if self.profiles.photo_in_use(key, excluding=principal):
            return "kept: another profile uses it"
        self.store.delete(key)
        return "deleted"

    # -- the JSON views of the API ------------------------------------------------------------------------
    def profile_json(self, p: Profile, own: bool = True) -> dict:
        """A profile as JSON: someone else's shows its opaque id, never the principal (a Slack user id)."""
        return {**({"principal": p.principal} if own else {}), "id": p.public_id, "name": p.display_name,
                "label": p.label, "score_engineer": round(p.score, 6),
                "confirmed": p.confirmed, "versions": p.versions, "scores": p.scores, "photo_url": self.photo_url(p)}

    def found_json(self, found) -> dict:
        if found.match is None:
            return {"match": None, "why": found.why_none, "you": self.profile_json(found.viewer)}
        return {"match": {**self.profile_json(found.match.profile, own=False), "affinity": found.match.affinity},
                "explanation": explain(found.viewer, found.match), "remaining": found.remaining,
                "you": self.profile_json(found.viewer)}
