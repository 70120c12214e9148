"""A prediction: the answer of one version to one request. A plain value (no LiteRT import)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


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

    def to_json(self) -> dict:
        return asdict(self)
