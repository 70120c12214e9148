"""Rendezvous: every version in the rendezvous set scores the same image in parallel, within a deadline, and a
policy picks the answer (the rendezvous architecture's schedule).

Example:
    rv = Rendezvous(runtime, settings.serving)
    result = rv.score(jpeg_bytes, request_id="r-1", policy="preferred", preferred=3, deadline_s=1.0)
    result.chosen.version, result.average, [a.late for a in result.answers]
    first, later = rv.score_in_two(jpeg_bytes, "r-2", first_s=2.3, final_s=10)   # Slack: now, then the rest
    final = later() if later else first

The policy and the preferred version come from the request, else from the control document's route
(`/models policy ...`), else from RENDEZVOUS_POLICY.

Policies:
    best-confidence   wait for every version until the deadline; the most confident answer wins (default)
    fastest           the first answer wins; the versions still working are reported late
    preferred         wait for the preferred version until the deadline; if it is late, the most confident
                      answer that has arrived wins

IMPORTANT: the image is decoded and preprocessed once per input size in the set (versions may differ), and
run through each backbone once: the versions that share a backbone (layers.serving.loader) are one group,
scored as the embedding and then each version's head (microseconds). A version on no shared backbone (the
portable single-model form) is a group of its own, its "embedding" being its input.
The largest group is scored in the request's own thread while the others run in the pool: handing work to
another thread costs about as much as one backbone pass of the default model (bench/RESULTS.md), and that
group is never slower than one /predict. The deadline applies to the groups in the pool.
A version that misses the deadline is reported `late`, never waited for: the reply is due at the deadline.
The average is over the answers that arrived.
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from layers.config import ServingSettings
from layers.errors import BadInput, Unavailable
from layers.events import EventSink, RendezvousRecord, now_ms
from layers.images import decode, to_input
from layers.registry.dataops import RENDEZVOUS_POLICIES as POLICIES     # one list, for DataOps too
from layers.serving.offpath import OffPath
from layers.serving.prediction import top
from layers.serving.runtime import ModelRuntime
from layers.serving.loader import Loaded


@dataclass(frozen=True)
class VersionAnswer:
    version: int
    label: str | None
    confidence: float | None
    probabilities: dict[str, float] = field(default_factory=dict)
    latency_ms: float | None = None
    late: bool = False


@dataclass(frozen=True)
class RendezvousResult:
    request_id: str
    model: str
    policy: str
    deadline_ms: float
    chosen: VersionAnswer | None
    average: dict[str, float]
    average_label: str | None
    answers: list[VersionAnswer]
    latency_ms: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Round:
    """One request's scoring in progress: the answers computed in the request's thread, and the futures of
    the groups still (or already) scoring in the pool."""
    request_id: str
    policy: str
    preferred: int | None
    t0: float
    labels: list[str]
    futures: dict
    here: list[VersionAnswer]


class Rendezvous:
    def __init__(self, runtime: ModelRuntime, settings: ServingSettings, sink: EventSink | None = None,
                 topic: str = "", workers: int = 4) -> None:
        self.runtime, self.settings, self.sink, self.topic = runtime, settings, sink, topic
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="rendezvous")
        self._delays = dict(settings.rendezvous_delays_ms)   # fault injection for tests: version -> extra ms
        self.offpath = OffPath(settings.offpath_queue, max_bytes=settings.offpath_max_bytes)

    def score(self, data: bytes, request_id: str, policy: str | None = None, preferred: int | None = None,
              deadline_s: float | None = None) -> RendezvousResult:
        deadline_s = self.settings.rendezvous_deadline_s if deadline_s is None else deadline_s
        return self.finish(self.start(data, request_id, policy, preferred, deadline_s), deadline_s)

    def score_in_two(self, data: bytes, request_id: str, first_s: float, final_s: float
                     ) -> tuple[RendezvousResult, Callable[[], RendezvousResult] | None]:
        """For Slack: the best answer by `first_s`, and, when versions were still working then (and the policy
        could still change its mind), a second look that waits for them until `final_s`. Only the final
        result is recorded on `predictions`."""
        rnd = self.start(data, request_id, None, None, final_s)
        first = self.finish(rnd, first_s, record=False)
        if rnd.policy == "fastest" or not any(a.late for a in first.answers):
            self._record(first)
            return first, None
        return first, lambda: self.finish(rnd, final_s)

    def start(self, data: bytes, request_id: str, policy: str | None, preferred: int | None,
              deadline_s: float) -> "Round":
        """Validate, preprocess, and set every version scoring (the largest group in this thread)."""
        t0 = time.perf_counter()
        snap = self.runtime.snapshot()
        policy = policy or snap.route.policy or self.settings.rendezvous_policy
        if policy not in POLICIES:
            raise BadInput(f"unknown policy {policy!r}; one of {', '.join(POLICIES)}")
        if not 0 < deadline_s <= 10:
            raise BadInput("the deadline is between 1 ms and 10 s")
        loaded = [snap.versions[v] for v in sorted(snap.route.rendezvous) if v in snap.versions]
        if not loaded:
            raise Unavailable(f"no version of model '{self.runtime.model}' in the rendezvous set is ready")
        if policy == "preferred":
            preferred = preferred if preferred is not None else snap.route.preferred
            if preferred not in {l.version for l in loaded}:
                raise BadInput(f"the preferred version must be one of {[l.version for l in loaded]}")
        # once per input size, exactly as training preprocesses for that size (the JPEG draft scale depends on it)
        inputs = {size: to_input(decode(data, draft_size=size, max_pixels=self.settings.max_pixels), size)
                  for size in {l.input_size for l in loaded}}
        groups = self._groups(loaded)
        here = max((g for g in groups if g[0].version not in self._delays), key=len, default=None)
        futures: dict[Future, list[Loaded]] = {
            self._pool.submit(self._group, g, inputs[g[0].input_size], t0): g for g in groups if g is not here}
        answers = self._group(here, inputs[here[0].input_size], t0) if here else []
        return Round(request_id, policy, preferred, t0, loaded[0].labels, futures, answers)

    def finish(self, rnd: "Round", deadline_s: float, record: bool = True) -> RendezvousResult:
        """Wait by the policy until `deadline_s` after the start, choose, and (by default) record the result."""
        futures, policy, preferred = rnd.futures, rnd.policy, rnd.preferred
        budget = max(0.0, deadline_s - (time.perf_counter() - rnd.t0))
        if policy == "fastest":
            done = ({f for f in futures if f.done()} if rnd.here
                    else wait(futures, timeout=budget, return_when=FIRST_COMPLETED)[0])
        elif policy == "preferred":
            wait([f for f, group in futures.items() if preferred in {l.version for l in group}], timeout=budget)
            done = {f for f in futures if f.done()}
        else:
            done, _ = wait(futures, timeout=budget)
        answers = rnd.here + [a for f, group in futures.items()
                              for a in (f.result() if f in done else [VersionAnswer(l.version, None, None, late=True)
                                                                      for l in group])]
        arrived = [a for a in answers if not a.late]
        chosen = self._choose(policy, arrived, preferred)
        average = ({lab: round(float(np.mean([a.probabilities[lab] for a in arrived])), 6) for lab in rnd.labels}
                   if arrived else {})
        result = RendezvousResult(
            request_id=rnd.request_id, model=self.runtime.model, policy=policy, deadline_ms=round(deadline_s * 1000, 1),
            chosen=chosen, average=average, average_label=max(average, key=average.get) if average else None,
            answers=sorted(answers, key=lambda a: a.version), latency_ms=round((time.perf_counter() - rnd.t0) * 1000, 2))
        if record:
            self._record(result)
        return result

    def _record(self, result: RendezvousResult) -> None:
        if self.sink is None:
            return
        chosen = result.chosen
        self.offpath.submit("record", lambda: self.sink.send(self.topic, RendezvousRecord(    # off the hot path
            request_id=result.request_id, model=result.model, policy=result.policy,
            chosen_version=chosen.version if chosen else None, average=result.average,
            answers=[{k: v for k, v in asdict(a).items() if k != "probabilities"} for a in result.answers],
            created_at_ms=now_ms()), key=result.request_id))

    def _groups(self, loaded: list[Loaded]) -> list[list[Loaded]]:
        """Versions that share a backbone pass are scored together: one embedding, then each head (a few
        microseconds). A version on no shared backbone, or with an injected delay, is a group of its own."""
        groups: dict[object, list[Loaded]] = {}
        for l in loaded:
            key = l.shares if l.shares is not None and l.version not in self._delays else ("alone", l.version)
            groups.setdefault(key, []).append(l)
        return list(groups.values())

    def _group(self, group: list[Loaded], x: np.ndarray, t0: float) -> list[VersionAnswer]:
        first = group[0]
        if first.version in self._delays:
            time.sleep(self._delays[first.version] / 1000)
        embedding = first.embed(x[None, ...])
        answers = []
        for loaded in group:
            label, confidence, by_label = top(loaded.labels, loaded.head_predict(embedding)[0])
            answers.append(VersionAnswer(version=loaded.version, label=label, confidence=round(confidence, 6),
                                         probabilities=by_label, latency_ms=round((time.perf_counter() - t0) * 1000, 2)))
        return answers

    @staticmethod
    def _choose(policy: str, arrived: list[VersionAnswer], preferred: int | None) -> VersionAnswer | None:
        if not arrived:
            return None
        if policy == "preferred":
            mine = [a for a in arrived if a.version == preferred]
            if mine:
                return mine[0]
        if policy == "fastest":
            return min(arrived, key=lambda a: a.latency_ms)
        return max(arrived, key=lambda a: (a.confidence, a.version))
