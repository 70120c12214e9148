"""Prometheus metrics through the gateway: every function answers GET /metrics (with a token) in the text
format, and the counters move with the traffic."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import http
from portraits.synth import portrait, to_jpeg


def scrape(gateway: str, function: str) -> dict:
    status, headers, body = http("GET", f"{gateway}/function/{function}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain"), (status, body)
    text = body.decode() if isinstance(body, bytes) else body
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def test_predict_metrics_follow_the_traffic(served, gateway):
    before = scrape(gateway, "predict")
    jpeg = to_jpeg(portrait(4321)[0])
    for _ in range(3):
        assert http("POST", f"{gateway}/function/predict", jpeg, {"Content-Type": "image/jpeg"})[0] == 200
    after = scrape(gateway, "predict")
    grew = lambda name, **ls: value(after, name, **ls) - value(before, name, **ls)
    assert grew("afterdark_http_requests_total", function="predict", method="POST", code="200") >= 3
    assert grew("afterdark_prediction_duration_seconds_count", model=served) >= 3
    assert grew("afterdark_prediction_confidence_count", model=served) >= 3
    assert grew("afterdark_cache_lookups_total", result="hits") >= 2                 # the same image thrice
    assert value(after, "afterdark_offpath_jobs_total", kind="decoy", outcome="submitted") >= 3
    assert value(after, "afterdark_model_runtime", what="ready_versions") >= 2


def test_every_function_serves_metrics_and_only_with_a_token(gateway):
    for function in ("predict", "predict-rendezvous", "fix", "models", "media", "afterdark", "healthz"):
        assert http("GET", f"{gateway}/function/{function}/metrics", auth=False)[0] == 401, function
        http("GET", f"{gateway}/function/{function}/nothing-here")            # one request of any kind
        names = {n for n, _ in scrape(gateway, function)}
        assert "afterdark_http_requests_total" in names and "afterdark_http_request_duration_seconds_count" in names
