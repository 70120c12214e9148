"""Training data: the base dataset plus the ledger's consensus, and the data manifest of a version.

The consensus comes from the vote ledger (layers.ledger). An accepted image in the train split
(layers.ledger.split) is a training example; one in the evaluation split is an evaluation example, never
trained on by any version. An accepted image that is also a dataset image (possible only when the consensus
was computed without the dataset as gold) overrides the dataset's label and leaves the hold-out set; a
quarantined image (a tie, a low posterior) is never trained on.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from training_job.datasets import Item
from layers.ledger import EVALUATION_FRACTION, Consensus, LedgerSnapshot, of_ledger, split_of


@dataclass(frozen=True)
class Example:
    sha256: str
    key: str          # where the image bytes are in S3
    label: str
    split: str        # train | holdout (the dataset's) | evaluation (voted, never trained on)
    source: str       # dataset | fix


def examples(dataset: list[Item], agreed: Consensus, evaluation_fraction: float = EVALUATION_FRACTION) -> list[Example]:
    out = [Example(i.sha256, i.key, i.label, i.split, "dataset") for i in dataset
           if i.sha256 not in agreed.accepted and i.sha256 not in agreed.quarantined]
    out += [Example(sha, a["key"], a["label"], split_of(sha, evaluation_fraction), "fix")
            for sha, a in sorted(agreed.accepted.items())]
    return sorted(out, key=lambda e: e.sha256)


def agree(snap: LedgerSnapshot, known: dict[str, str], cfg) -> Consensus:
    """The consensus the trainer trains on and the canary judges with: Dawid-Skene over every voter's latest
    votes, with the dataset's images as gold (`known`: sha256 -> label, layers.ledger.GoldAnswers)."""
    return of_ledger(snap, known, cfg.min_votes_per_image, cfg.min_posterior)


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
                   "holdout": sum(e.split == "holdout" for e in exs),
                   "evaluation": sum(e.split == "evaluation" for e in exs), "fixes": len(agreed.accepted),
                   "quarantined": len(agreed.quarantined), "waiting": len(agreed.waiting)},
        "ledger": ledger,
        "examples": [asdict(e) for e in exs],
        "fixes": {sha: a for sha, a in sorted(agreed.accepted.items())},
        "quarantined": {sha: q for sha, q in sorted(agreed.quarantined.items())},
        "waiting": {sha: w for sha, w in sorted(agreed.waiting.items())},
    }
