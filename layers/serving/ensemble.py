"""An ensemble of live versions: the average of their probabilities for one image (the dating app's score).

Example:
    ensemble = Ensemble(runtime, settings.serving)
    score = ensemble.score(jpeg_bytes)
    score.label, score.average["engineer"], score.versions, score.each[3]

Which versions: the control document's `ensemble` when it names ready versions (`/models ensemble 3 5`),
else the two ready versions with the most traffic (the newest among equals). How they are averaged:
equally, or (ENSEMBLE_WEIGHTING=fix-accuracy) each weighted by its accuracy on the voted images it trained on
(metadata metrics.fixes.accuracy; a version without that figure weighs as the others' mean, or 1).
The backbone runs once for the versions that share it (layers.serving.loader.score_all).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from layers.config import ServingSettings
from layers.errors import Unavailable
from layers.images import decode, to_input
from layers.registry import ModelRoute
from layers.serving.runtime import ModelRuntime
from layers.serving.loader import Loaded, score_all

WEIGHTINGS = ("equal", "fix-accuracy")


@dataclass(frozen=True)
class EnsembleScore:
    model: str
    label: str
    confidence: float
    unconfident: bool
    average: dict[str, float]                 # label -> weighted mean probability
    versions: list[int]
    weights: dict[int, float]
    each: dict[int, dict[str, float]]         # version -> its own probabilities

    def to_json(self) -> dict:
        return {**asdict(self), "weights": {str(k): v for k, v in self.weights.items()},
                "each": {str(k): v for k, v in self.each.items()}}


def members(route: ModelRoute, ready: set[int], size: int = 2) -> list[int]:
    """The ensemble's versions (pure): the route's `ensemble` if all of it is ready, else the `size` ready
    versions with the most traffic, the newest among equals."""
    named = [v for v in route.ensemble if v in ready]
    if named and len(named) == len(route.ensemble):
        return sorted(named)
    ranked = sorted(ready, key=lambda v: (route.weights.get(v, 0), v), reverse=True)
    return sorted(ranked[:size])


def weights_for(loaded: list[Loaded], weighting: str) -> dict[int, float]:
    """Each version's weight, summing to 1 (pure)."""
    if weighting == "fix-accuracy":
        acc = {l.version: (l.meta.metrics.get("fixes") or {}).get("accuracy") for l in loaded}
        known = [a for a in acc.values() if a is not None]
        fill = sum(known) / len(known) if known else 1.0
        raw = {v: (a if a is not None else fill) for v, a in acc.items()}
    else:
        raw = {l.version: 1.0 for l in loaded}
    total = sum(raw.values()) or 1.0
    return {v: w / total for v, w in raw.items()}


class Ensemble:
    def __init__(self, runtime: ModelRuntime, settings: ServingSettings, weighting: str = "equal") -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"ENSEMBLE_WEIGHTING is one of {WEIGHTINGS}, not {weighting!r}")
        self.runtime, self.settings, self.weighting = runtime, settings, weighting

    def score(self, data: bytes) -> EnsembleScore:
        snap = self.runtime.snapshot()
        chosen = members(snap.route, set(snap.versions))
        if not chosen:
            raise Unavailable(f"no version of model '{self.runtime.model}' is ready to score yet")
        loaded = [snap.versions[v] for v in chosen]
        inputs = {size: to_input(decode(data, draft_size=size, max_pixels=self.settings.max_pixels), size)
                  for size in {l.input_size for l in loaded}}
        probs = score_all(loaded, inputs)
        weights = weights_for(loaded, self.weighting)
        labels = loaded[0].labels
        average = {lab: round(sum(weights[l.version] * float(probs[l.version][i]) for l in loaded), 6)
                   for i, lab in enumerate(labels)}
        label = max(average, key=average.get)
        return EnsembleScore(model=self.runtime.model, label=label, confidence=average[label],
                             unconfident=average[label] < self.settings.unconfident_below, average=average,
                             versions=chosen, weights={v: round(w, 4) for v, w in weights.items()},
                             each={l.version: {lab: round(float(p), 6) for lab, p in zip(labels, probs[l.version])}
                                   for l in loaded})
