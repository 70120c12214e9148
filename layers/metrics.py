"""Prometheus metrics (prometheus_client), for every function and the trainer, named by Prometheus' conventions
(`afterdark_` prefix, base units, `_total` counters).

Example:
    metrics.PREDICTION_SECONDS.labels(model, "3").observe(0.004)
    metrics.watch_offpath("predict", predictor.offpath)          # read at scrape time, not counted twice
    status, body, ctype = metrics.exposition(headers, settings)  # GET /metrics (the template routes it)

Served at GET /function/<name>/metrics through the gateway, with a bearer token (like the JSON API: the
counts describe the traffic). The template (template/python3-afterdark/index.py) times every request and
answers /metrics; handlers record what only they know (per-version latency and confidence, votes).
"""
from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from layers.auth import ApiTokens
from layers.config import Settings

HTTP_REQUESTS = Counter("afterdark_http_requests_total", "HTTP requests a function answered",
                        ["function", "method", "code"])
HTTP_SECONDS = Histogram("afterdark_http_request_duration_seconds", "Time to answer an HTTP request", ["function"],
                         buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
PREDICTION_SECONDS = Histogram("afterdark_prediction_duration_seconds",
                               "Decode, preprocess and inference of one /predict, by model version",
                               ["model", "version"], buckets=(.0005, .001, .002, .005, .01, .025, .05, .1, .25))
PREDICTION_CONFIDENCE = Histogram("afterdark_prediction_confidence", "Confidence of /predict answers, by version",
                                  ["model", "version"], buckets=(.5, .6, .7, .8, .9, .95, .99, 1.0))
UNCONFIDENT = Counter("afterdark_unconfident_predictions_total", "Answers below the confidence threshold",
                      ["model", "version"])
VOTES = Counter("afterdark_votes_total", "Votes acknowledged (stored, and acknowledged by Kafka)", ["source"])
TRAINING_RUNS = Counter("afterdark_training_runs_total", "Training runs by outcome", ["model", "outcome"])
INGESTED_VOTES = Counter("afterdark_ingested_votes_total", "Votes the trainer added to the ledger", ["model"])


class StatsCollector(Collector):
    """Exports counters an object already keeps (read at scrape time): `stats()` -> {"kind.outcome": n}."""

    def __init__(self, name: str, doc: str, labels: tuple[str, str], stats: Callable[[], dict], extra: dict) -> None:
        self.name, self.doc, self.labels, self.stats, self.extra = name, doc, labels, stats, extra

    def collect(self) -> Iterable:
        family = CounterMetricFamily(self.name, self.doc, labels=[*self.extra, *self.labels])
        for key, value in sorted(self.stats().items()):
            if "." in key:
                a, b = key.split(".", 1)
                family.add_metric([*self.extra.values(), a, b], value)
        yield family


class GaugeCollector(Collector):
    def __init__(self, name: str, doc: str, read: Callable[[], dict[tuple, float]], labels: list[str]) -> None:
        self.name, self.doc, self.read, self.labels = name, doc, read, labels

    def collect(self) -> Iterable:
        family = GaugeMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in self.read().items():
            family.add_metric(list(key), value)
        yield family


def watch_offpath(function: str, *offpaths) -> None:
    """Off-the-hot-path jobs (decoy, shadow, record, review): submitted, done, failed, dropped. One collector
    for all of a function's queues (their job kinds differ)."""
    def stats() -> dict:
        out: dict = {}
        for q in offpaths:
            for key, value in q.stats().items():
                out[key] = out.get(key, 0) + value
        return out
    REGISTRY.register(StatsCollector("afterdark_offpath_jobs", "Jobs off the hot path, by kind and outcome",
                                     ("kind", "outcome"), stats, {"function": function}))


def watch_runtime(runtime) -> None:
    """Model reloads, load failures and the versions ready to serve."""
    def counts() -> dict[tuple, float]:
        s = runtime.status()
        return {(runtime.model, "reloads"): s["reloads"], (runtime.model, "failed_versions"): len(s["failed"]),
                (runtime.model, "ready_versions"): len(s["ready"])}
    REGISTRY.register(GaugeCollector("afterdark_model_runtime", "Model runtime: reloads, versions ready and failed",
                                     counts, ["model", "what"]))


def watch_cache(cache) -> None:
    def counts() -> dict[str, int]:
        s = cache.stats()
        return {"prediction.hits": s["hits"], "prediction.misses": s["misses"]}
    REGISTRY.register(StatsCollector("afterdark_cache_lookups", "Prediction cache lookups", ("cache", "result"),
                                     counts, {}))


def exposition(headers, settings: Settings) -> tuple[int, bytes, str]:
    """GET /metrics: the text format for a bearer of any API token; 401 otherwise."""
    if ApiTokens.parse(settings.auth.api_tokens).identify(headers.get("Authorization")) is None:
        return 401, b'{"error": "unauthorized", "message": "metrics need Authorization: Bearer <token>"}\n', \
            "application/json"
    return 200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST
