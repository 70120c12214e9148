"""What became of the votes: a voter's own (their App Home), and who taught a version what (vote receipts).
Both read the version's own record of what it trained on (its data.json: the consensus it was given, and each
example's split), so they say what the version learnt, not what the ledger says now.

Example:
    standing = Standing(ledger, registry)
    standing.of_voter("engineer", "slack:T1:U1")    # [VoteStanding(sha, label, state, detail)], newest first
    standing.teachers("engineer", 7)                 # {principal: [sha, ...]}: whose votes v7 trained on

The states of a vote, against the live version vN:
    learnt       vN trained on the image, with the consensus label this vote gave
    held out     the consensus agrees with this vote, and the image is in the evaluation split: never trained
                 on, so it tests every version honestly
    outvoted     the consensus vN was given says otherwise
    quarantined  a tie, or a consensus too unsure to train on
    waiting      too few votes on the image yet
    new          cast after vN's training: the next version will weigh it
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from layers.ledger.votes import Ledger
from layers.registry import Registry
from layers.registry.versions import trained_fixes_of

KEEP_DATA = 4                  # data.json files kept (the live version's, and a few before it)


@dataclass(frozen=True)
class VoteStanding:
    image_sha256: str
    label: str
    state: str           # learnt | held out | outvoted | quarantined | waiting | new
    detail: str          # e.g. "by v7", "consensus non_engineer (0.91)"


class Standing:
    def __init__(self, ledger: Ledger, registry: Registry) -> None:
        self.ledger, self.registry = ledger, registry
        self._data: dict[tuple[str, int], dict] = {}
        self._lock = threading.Lock()

    def data(self, model: str, version: int) -> dict:
        """A version's data.json, read once (versions are immutable; the last few are kept)."""
        key = (model, version)
        with self._lock:                         # the Home tab is built on several threads
            if key in self._data:
                return self._data[key]
        data = json.loads(self.registry.fetch_artifact(model, version, "data.json"))
        with self._lock:
            while len(self._data) >= KEEP_DATA:
                self._data.pop(next(iter(self._data)))
            self._data[key] = data
        return data

    def of_voter(self, model: str, principal: str, limit: int = 10) -> list[VoteStanding]:
        votes = self.ledger.latest_of(model, principal, limit)
        live = self.registry.live_version(model)
        if not votes or live is None:
            return [VoteStanding(v.image_sha256, v.label, "new", "no live version yet") for v in votes]
        data = self.data(model, live)
        watermark = int((data.get("ledger") or {}).get("watermark") or 0)
        trained = trained_fixes_of(data)
        out = []
        for v in votes:
            agreed, held = (data.get("fixes") or {}).get(v.image_sha256), (data.get("quarantined") or {}).get(v.image_sha256)
            if v.seq > watermark:
                state, detail = "new", f"cast after v{live} was trained; the next version weighs it"
            elif agreed and agreed.get("label") != v.label:
                state, detail = "outvoted", f"consensus {agreed['label']} ({agreed.get('posterior', 0):.2f})"
            elif agreed and v.image_sha256 in trained:
                state, detail = "learnt", f"by v{live} (live)"
            elif agreed:
                state, detail = "held out", f"in the evaluation split: it tests every version, v{live} included"
            elif held:
                state, detail = "quarantined", str(held.get("reason", "a tie or an unsure consensus"))
            else:
                state, detail = "waiting", "too few votes on this image yet"
            out.append(VoteStanding(v.image_sha256, v.label, state, detail))
        return out

    def teachers(self, model: str, version: int) -> dict[str, list[str]]:
        """{principal: images} whose votes `version` trained on, each vote with the consensus label."""
        data = self.data(model, version)
        trained = trained_fixes_of(data)
        fixes = {sha: f for sha, f in (data.get("fixes") or {}).items() if sha in trained}
        voters = self.ledger.voters_of([vid for f in fixes.values() for vid in f.get("vote_ids") or []])
        out: dict[str, list[str]] = {}
        for sha, f in sorted(fixes.items()):
            for vid in f.get("vote_ids") or []:
                who, label = voters.get(vid, (None, None))
                if who and label == f.get("label") and sha not in out.get(who, []):
                    out.setdefault(who, []).append(sha)
        return out

