"""Training data: the base dataset plus every fix, label consensus, and the data manifest of a version.

Consensus (pure, table-tested): for each image, each user's latest vote counts once; the label with a strict
majority wins; a tie is quarantined (reported, never trained on). A fix overrides the dataset's label for
the same image (by sha256) and moves it out of the hold-out set.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field

from layers.datasets import Item


@dataclass(frozen=True)
class Example:
    sha256: str
    key: str          # where the image bytes are in S3
    label: str
    split: str        # train | holdout
    source: str       # dataset | fix


@dataclass
class Consensus:
    accepted: dict[str, dict] = field(default_factory=dict)     # sha -> {"label", "votes", "key", "fix_ids"}
    quarantined: dict[str, dict] = field(default_factory=dict)  # sha -> {"votes", "key", "fix_ids", "reason"}


def consensus(fixes: list[dict]) -> Consensus:
    """`fixes`: fix records as dicts (image_sha256, image_key, label, user, created_at_ms, fix_id)."""
    latest: dict[tuple[str, str], dict] = {}
    for f in sorted(fixes, key=lambda f: (f["created_at_ms"], f["fix_id"])):
        latest[(f["image_sha256"], f["user"])] = f          # a user's later vote replaces their earlier one
    by_image: dict[str, list[dict]] = {}
    for (sha, _), f in sorted(latest.items()):
        by_image.setdefault(sha, []).append(f)
    out = Consensus()
    for sha, votes in by_image.items():
        counts = Counter(f["label"] for f in votes)
        (top, n), *rest = counts.most_common() + [(None, 0)]
        info = {"votes": dict(sorted(counts.items())), "key": votes[0]["image_key"],
                "fix_ids": sorted(f["fix_id"] for f in votes)}
        if rest and rest[0][1] == n:
            out.quarantined[sha] = {**info, "reason": "tie between labels"}
        else:
            out.accepted[sha] = {**info, "label": top}
    return out


def examples(dataset: list[Item], agreed: Consensus) -> list[Example]:
    out = [Example(i.sha256, i.key, i.label, i.split, "dataset") for i in dataset
           if i.sha256 not in agreed.accepted and i.sha256 not in agreed.quarantined]
    out += [Example(sha, a["key"], a["label"], "train", "fix") for sha, a in sorted(agreed.accepted.items())]
    return sorted(out, key=lambda e: e.sha256)


def data_manifest(dataset_name: str, dataset_sha: str, exs: list[Example], agreed: Consensus,
                  fix_records: list[dict]) -> dict:
    """The data.json of a version. `data_sha256` hashes exactly what was trained and evaluated on, so two
    versions with the same data are recognisable (and the consumer never publishes the same data twice)."""
    core = {"dataset": dataset_name, "dataset_manifest_sha256": dataset_sha,
            "examples": [[e.sha256, e.label, e.split] for e in exs]}
    digest = hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()
    return {
        "data_sha256": digest,
        "dataset": dataset_name,
        "dataset_manifest_sha256": dataset_sha,
        "counts": {"examples": len(exs), "train": sum(e.split == "train" for e in exs),
                   "holdout": sum(e.split == "holdout" for e in exs), "fixes": len(agreed.accepted),
                   "quarantined": len(agreed.quarantined)},
        "examples": [asdict(e) for e in exs],
        "fixes": {sha: a for sha, a in sorted(agreed.accepted.items())},
        "quarantined": {sha: q for sha, q in sorted(agreed.quarantined.items())},
        "fix_records": sorted(fix_records, key=lambda f: f["fix_id"]),
    }
