"""The /fix service: a vote becomes durable before it is acknowledged.

Example:
    recorder = VoteRecorder(store, sink, ledger, limiter, settings)
    label = recorder.admit("api:ci:alice", "engineer")          # valid class, and under the rate limit
    receipt = recorder.record(jpeg_bytes, label, "api:ci:alice", source="api", key=request_key(header))
    receipt = recorder.record_stored(sha, label, "slack:T1:U1", source="button", key=f"trigger:{trigger_id}")

Order (ARCHITECTURE, flow 2): the caller is authenticated (the handler) -> the class is validated and the
principal's rate limit counted (PostgreSQL) -> the bytes are checked to be an image -> the vote id is looked
up in the ledger, and a caller's Idempotency-Key is bound to this request in PostgreSQL (the same request
again answers "already recorded"; another request with the key is a 409, at once) -> the image is stored at
images/<sha256> -> the Vote goes to `fixes` and the broker acknowledges it (acks=all) -> the key is marked
sent -> acknowledge. If S3, Kafka or
PostgreSQL fails, Unavailable (503) is raised and nothing is acknowledged. The trainer moves the vote from
Kafka into the ledger (idempotent on the vote id).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from layers import metrics
from layers.edge.auth import FRESH, vote_id
from layers.config import Settings
from layers.errors import BadInput, Conflict, NotFound
from layers.events import EventSink, now_ms
from layers.ledger.limits import RateLimiter
from layers.images import decode, sha256_hex
from layers.ledger import Ledger, Vote, request_fingerprint
from layers.registry import decoy_key, image_key
from layers.store import BlobStore

ARCHIVER_LAG_S = 3.0            # how long a vote on a decoy waits for the archiver to store its image
VALIDATION_DRAFT = 256          # decode at most this size to check the bytes are an image (JPEG draft mode)


@dataclass(frozen=True)
class VoteReceipt:
    """What /fix answers: the vote, whether this request had been recorded before, and what happens next."""
    vote: Vote
    duplicate: bool
    next: str

    def to_json(self) -> dict:
        fields = {k: v for k, v in asdict(self.vote).items() if k != "created_at_ms"}
        return {**fields, "duplicate": self.duplicate, "next": self.next}


def canonical_label(text: str, labels) -> str | None:
    """The label `text` names, ignoring case and how the words are joined; None when it names none."""
    squash = lambda t: "".join(c for c in t.lower() if c.isalnum())
    matches = [label for label in labels if squash(label) == squash(text)]
    return matches[0] if len(matches) == 1 and squash(text) else None


class VoteRecorder:
    def __init__(self, store: BlobStore, sink: EventSink, ledger: Ledger, limiter: RateLimiter,
                 settings: Settings, client_limiter: RateLimiter | None = None) -> None:
        self.store, self.sink, self.ledger, self.limiter, self.settings = store, sink, ledger, limiter, settings
        self.client_limiter = client_limiter
        self.labels = settings.labels
        self.topic = settings.kafka.topics.fixes

    def validate_label(self, label: object) -> str:
        """The class a vote names, as the ledger spells it: any case, with a space, a hyphen or nothing for the
        underscore ("Non-Engineer", "non engineer", "NONENGINEER" -> non_engineer)."""
        found = canonical_label(label, self.labels) if isinstance(label, str) else None
        if found is None:
            raise BadInput(f"unknown class {label!r}; valid classes: {', '.join(self.labels)}",
                           valid_labels=list(self.labels))
        return found

    def admit(self, principal: str, label: object, client: str | None = None) -> str:
        """Validate the class and count the vote against the principal's rate limit and, for an API client
        (`client`: api:<name>), the client's own limit over all the users it acts for, before any work."""
        label = self.validate_label(label)
        self.limiter.hit(principal, "vote")
        if client is not None and client != principal and self.client_limiter is not None:
            self.client_limiter.hit(client, "client-vote")
        return label

    def record(self, data: bytes, label: str, principal: str, source: str, key: str) -> VoteReceipt:
        decode(data, draft_size=VALIDATION_DRAFT, max_pixels=self.settings.serving.max_pixels)   # else 4xx, nothing stored
        sha = sha256_hex(data)
        return self._vote(sha, label, principal, source, key, store=lambda k: self.store.put_if_absent(k, data))

    def record_stored(self, sha: str, label: str, principal: str, source: str, key: str) -> VoteReceipt:
        """A vote on an image already stored (a button under an answer that showed it): at images/<sha256>,
        or as a decoy of /predict, which the vote copies to images/ (decoys expire; voted images stay)."""
        def present(k: str) -> None:
            if self.store.exists(k):
                return
            deadline = time.monotonic() + ARCHIVER_LAG_S
            while True:
                try:
                    self.store.put_if_absent(k, self.store.get(decoy_key(sha)).body)
                    return
                except NotFound:
                    if time.monotonic() > deadline:
                        raise NotFound("that image is no longer stored, so it cannot be voted on; use /fix with "
                                       "its URL") from None
                    time.sleep(0.2)          # a decoy just answered may still be on its way to S3 (the archiver)
        return self._vote(sha, label, principal, source, key, store=present)

    def _vote(self, sha: str, label: str, principal: str, source: str, key: str, store) -> VoteReceipt:
        vote = Vote(vote_id=vote_id(principal, key), model=self.settings.model, image_sha256=sha,
                    image_key=image_key(sha), label=label, principal=principal, source=source, created_at_ms=now_ms())
        conflict = Conflict("this Idempotency-Key was already used for a different vote; use a new key",
                            vote_id=vote.vote_id)
        known = self.ledger.get(vote.vote_id)             # ingested already (or acknowledged before keys were bound)
        if known is not None:
            if (known.vote.image_sha256, known.vote.label) != (vote.image_sha256, vote.label):
                raise conflict
            return self._receipt(vote, duplicate=True)
        bound = None
        if not key.startswith(FRESH):                     # a caller's key: bound to this request before it is sent
            bound = self.ledger.bind_key(vote.vote_id, request_fingerprint(vote.model, sha, label))
            if bound.state == "conflict":
                raise conflict
            if bound.state == "same" and bound.sent:
                return self._receipt(vote, duplicate=True)
        # new, or the same request whose first attempt died (or is racing this one) before Kafka acknowledged
        # it: send it (again); the ledger keeps one row per vote id
        store(vote.image_key)
        self.sink.send(self.topic, vote, key=sha)                 # acks=all, or Unavailable
        if bound is not None:
            self.ledger.key_sent(vote.vote_id)
        metrics.VOTES.labels(source).inc()
        return self._receipt(vote, duplicate=False)       # sent by this request (a racing twin may send it too)

    def tally(self, receipt: VoteReceipt) -> dict[str, int]:
        """Everyone's latest vote on this image, counting this one even before the trainer has ingested it."""
        vote = receipt.vote
        counts = self.ledger.tally_by_principal(vote.model, vote.image_sha256)
        counts[vote.principal] = vote.label
        out: dict[str, int] = {}
        for label in counts.values():
            out[label] = out.get(label, 0) + 1
        return dict(sorted(out.items()))

    def _receipt(self, vote: Vote, duplicate: bool) -> VoteReceipt:
        note = ("this request was already recorded; nothing new was sent" if duplicate
                else "recorded durably (image stored, Kafka acknowledged); the trainer adds it to the ledger and "
                     "retrains on the consensus of everyone's latest votes")
        return VoteReceipt(vote, duplicate=duplicate, next=note)
