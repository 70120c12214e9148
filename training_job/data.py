"""Training data: the base dataset plus the ledger's consensus, and the data manifest of a version.

The consensus comes from the vote ledger (layers.ledger). An accepted image overrides the dataset's label for
the same image (by sha256) and moves it out of the hold-out set; a quarantined image (a tie) is never trained
on.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from training_job.datasets import Item
from layers.ledger import Consensus


@dataclass(frozen=True)
class Example:
    sha256: str
    key: str          # where the image bytes are in S3
    label: str
    split: str        # train | holdout
    source: str       # dataset | fix


def examples(dataset: list[Item], agreed: Consensus) -> list[Example]:
    out = [Example(i.sha256, i.key, i.label, i.split, "dataset") for i in dataset
           if i.sha256 not in agreed.accepted and i.sha256 not in agreed.quarantined]
    out += [Example(sha, a["key"], a["label"], "train", "fix") for sha, a in sorted(agreed.accepted.items())]
    return sorted(out, key=lambda e: e.sha256)


def data_manifest(dataset_name: str, dataset_sha: str, exs: list[Example], agreed: Consensus, ledger: dict) -> dict:
    """The data.json of a version. `data_sha256` hashes exactly what was trained and evaluated on, so two
    versions with the same data are recognisable (and the trainer never publishes the same data twice).
    `ledger` says which ledger state it came from: {"watermark", "votes", "run_id"}."""
    core = {"dataset": dataset_name, "dataset_manifest_sha256": dataset_sha,
            "examples": [[e.sha256, e.label, e.split] for e in exs]}
    digest = hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()
    return {
        "data_sha256": digest,
        "dataset": dataset_name,
        "dataset_manifest_sha256": dataset_sha,
        "counts": {"examples": len(exs), "train": sum(e.split == "train" for e in exs),
                   "holdout": sum(e.split == "holdout" for e in exs), "fixes": len(agreed.accepted),
                   "quarantined": len(agreed.quarantined), "waiting": len(agreed.waiting)},
        "ledger": ledger,
        "examples": [asdict(e) for e in exs],
        "fixes": {sha: a for sha, a in sorted(agreed.accepted.items())},
        "quarantined": {sha: q for sha, q in sorted(agreed.quarantined.items())},
        "waiting": {sha: w for sha, w in sorted(agreed.waiting.items())},
    }
