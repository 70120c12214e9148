"""A prediction: the answer of one version to one request. A plain value (no LiteRT import)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence


def top(labels: list[str], probs: Sequence[float]) -> tuple[str, float, dict[str, float]]:
    """(label, confidence, probabilities by label) of one probability vector, in the labels' order."""
    i = max(range(len(labels)), key=lambda j: probs[j])
    return labels[i], float(probs[i]), {l: round(float(p), 6) for l, p in zip(labels, probs)}


@dataclass(frozen=True)
class Prediction:
    request_id: str
    model: str
    version: int
    label: str
    confidence: float
    unconfident: bool
    probabilities: dict[str, float]
    latency_ms: float
    user: str | None
    image_sha256: str = ""             # of the bytes scored (stored at images/<sha256> off the hot path)

    def to_json(self) -> dict:
        return asdict(self)
