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

from typing import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from layers.edge.auth import ApiTokens
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
TRACKING_FAILURES = Counter("afterdark_tracking_failures_total",
                            "Training runs or versions the trainer could not log to MLflow (backfilled later)")
INGESTED_VOTES = Counter("afterdark_ingested_votes_total", "Votes the trainer added to the ledger", ["model"])


_OFFPATHS: list[tuple[str, object]] = []          # (function, OffPath)
_RUNTIMES: list = []
_CACHES: list = []


def _offpath_stats() -> list[tuple[str, dict]]:
    return [(function, q.stats()) for function, q in list(_OFFPATHS)]


class _Watched(Collector):
    """One collector per metric name, over every object a process asked to watch (read at scrape time)."""

    def collect(self) -> Iterable:
        jobs = CounterMetricFamily("afterdark_offpath_jobs", "Jobs off the hot path, by kind and outcome",
                                   labels=["function", "kind", "outcome"])
        merged: dict[tuple[str, str, str], float] = {}
        for function, stats in _offpath_stats():
            for key, value in stats.items():
                if "." in key:
                    kind, outcome = key.split(".", 1)
                    merged[(function, kind, outcome)] = merged.get((function, kind, outcome), 0) + value
        for labels, value in sorted(merged.items()):
            jobs.add_metric(list(labels), value)
        yield jobs
        runtime = GaugeMetricFamily("afterdark_model_runtime", "Model runtime: reloads, versions ready and failed",
                                    labels=["model", "what"])
        for rt in list(_RUNTIMES):
            s = rt.status()
            for what, value in (("reloads", s["reloads"]), ("failed_versions", len(s["failed"])),
                                ("ready_versions", len(s["ready"]))):
                runtime.add_metric([rt.model, what], value)
        yield runtime
        lookups = CounterMetricFamily("afterdark_cache_lookups", "Prediction cache lookups", labels=["cache", "result"])
        for cache in list(_CACHES):
            s = cache.stats()
            lookups.add_metric(["prediction", "hits"], s["hits"])
            lookups.add_metric(["prediction", "misses"], s["misses"])
        yield lookups


REGISTRY.register(_Watched())


def watch_offpath(function: str, *offpaths) -> None:
    """Off-the-hot-path jobs (decoy, shadow, record, review): submitted, done, failed, dropped, unacknowledged."""
    _OFFPATHS.extend((function, q) for q in offpaths)


def watch_runtime(runtime) -> None:
    """Model reloads, load failures and the versions ready to serve."""
    _RUNTIMES.append(runtime)


def watch_cache(cache) -> None:
    _CACHES.append(cache)


def exposition(headers, settings: Settings) -> tuple[int, bytes, str]:
    """GET /metrics: the text format for a bearer of any API token; 401 otherwise."""
    if ApiTokens.parse(settings.auth.api_tokens).identify(headers.get("Authorization")) is None:
        return 401, b'{"error": "unauthorized", "message": "metrics need Authorization: Bearer <token>"}\n', \
            "application/json"
    return 200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST
