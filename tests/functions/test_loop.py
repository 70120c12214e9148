"""The whole loop through the real gateway, trainer, Kafka, MinIO and PostgreSQL, as `make demo` shows it:
votes on a new kind of portrait -> a new version -> canary -> judged on voted images it never trained on ->
promoted by the canary policy -> /predict answers portraits of the kind that nobody voted on better."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from layers.registry.dataops import DataOps
from tests.conftest import audited, ROOT
from tests.training_job.conftest import consume_args


@pytest.mark.last
def test_votes_become_a_canary_that_is_promoted_and_answers(served, gateway, store, settings, uid):
    reg = audited(store)
    ops = DataOps(reg, served)
    trainer = subprocess.Popen([sys.executable, "-m", "training_job", *consume_args(
        served, settings.kafka.topics.fixes, "--canary-every-s", "1", "--max-wait-s", "3", "--metrics-port", "9465",
        "--canary-window-s", "900",        # this session's traffic, not the test topic's week of sessions
        # the session's ledger holds every other test's arbitrary votes on this model; the publish gates are
        # tested in test_gates.py, and here the canary policy must get a version to judge
        "--min-accuracy", "0.5", "--max-regression", "0.5")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        demo = subprocess.run([sys.executable, "dev/demo_loop.py", "--gateway", gateway, "--json", "--timeout", "150",
                               # 6 honest images at most: the canary is decided (promoted or rolled back)
                               # after 3 rounds of votes (the demo's pace keeps its voters under the rate limit)
                               "--budget", "6"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert demo.returncode == 0, demo.stderr[-3000:]
        summary = json.loads(demo.stdout)
        new = summary["decided"]
        assert new > summary["live_before"] and summary["decision"] in ("live", "rejected"), summary
        # the decision rests on honest evidence, stated in the audit log: n, the discordant pairs, p at alpha
        assert "n=" in summary["evidence"] and "alpha" in summary["evidence"], summary["evidence"]
        audit = [h for h in ops.history(limit=200)["history"] if h["actor"] == "system:auto-promotion"]
        assert any(f"v{new}=" in h["change"] and "gets" in h["change"] for h in audit)      # the canary step
        if summary["decision"] == "live":       # promoted: better on portraits of the new look nobody voted on
            assert ops.route().live == new and all(p["version"] == new for p in summary["after"])
            right = lambda answers: sum(a["label"] == t for a, t in zip(answers, summary["truth"]))
            assert right(summary["after"]) >= right(summary["before"]), summary
        else:                                   # rolled back: out of traffic, and never tried again
            assert ops.route().weights.get(new, 0) == 0 and new in ops.route().auto.rejected
            assert ops.route().live == summary["live_before"]
        from prometheus_client.parser import text_string_to_metric_families
        import urllib.request
        text = urllib.request.urlopen("http://127.0.0.1:9465/metrics", timeout=5).read().decode()
        samples = {(s.name, s.labels.get("outcome")): s.value for f in text_string_to_metric_families(text)
                   for s in f.samples if s.labels.get("model") == served}
        assert samples.get(("afterdark_training_runs_total", "published"), 0) >= 1, samples
        assert samples.get(("afterdark_ingested_votes_total", None), 0) >= 8, samples
    finally:
        trainer.kill()
        out = trainer.communicate(timeout=30)[0]
        print(out[-4000:])
        ops.auto(False, "test")
