"""DataOps through the gateway (the `models` function) and its CLI: the verbs, who may use them, conditional
edits, rollback, and the loop a canary and a promotion close with /predict answering the new version."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import audited, ROOT, http, wait_until
from tests.functions.test_slack import assert_valid_blocks, form, signed
from tests.training_job.conftest import read_topic

VIEWER = os.environ.get("API_TOKEN_VIEWER", "")          # dev/test.sh: a token without the admin scope
JSON = {"Content-Type": "application/json"}


def models(gateway, method: str = "GET", path: str = "", body: dict | None = None, token: str | None = None,
           revision: int | None = None):
    headers = dict(JSON)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if revision is not None:
        headers["If-Match"] = str(revision)
    return http(method, f"{gateway}/function/models{path}", json.dumps(body).encode() if body is not None else None,
                headers)


def served_route(gateway) -> dict:
    return http("GET", f"{gateway}/function/predict/status")[2]["route"]["weights"]


@pytest.fixture
def restore_route(served, store):
    """Every test here leaves the route as the other tests expect it: v1 100%, v2 deployed at 0%."""
    yield
    def change(doc):
        route = doc.models[served]
        route.weights = {1: 100, 2: 0}
        route.mirror, route.rendezvous = [2], sorted(set(route.rendezvous) | {1, 2})
        return "test: restore"
    audited(store).update_control(change, "test")


def test_list_shows_roles_and_metrics(served, gateway):
    status, _, body = models(gateway)
    assert status == 200, body
    rows = {r["version"]: r for r in body["versions"]}
    assert rows[1]["role"] == "live" and rows[1]["weight"] == 100 and 0.75 <= rows[1]["accuracy"] <= 1
    assert rows[2]["role"] in ("mirror", "standby", "canary") and rows[2]["parent"] is None
    assert isinstance(body["revision"], int)
    status, _, one = models(gateway, path="/1")
    assert status == 200 and one["version"] == 1 and one["metrics"]["holdout"]["n"] > 0
    assert models(gateway, path="/999")[0] == 404
    assert http("GET", f"{gateway}/function/models", auth=False)[0] == 401


def test_edits_need_the_admin_scope_and_refusals_are_audited(served, gateway, restore_route):
    assert VIEWER, "dev/test.sh exports API_TOKEN_VIEWER"
    assert models(gateway, token=VIEWER)[0] == 200                          # reading is fine
    status, _, body = models(gateway, "POST", "/canary", {"version": 2, "percent": 10}, token=VIEWER)
    assert status == 403 and body["error"] == "forbidden", body
    assert served_route(gateway) == {"1": 100, "2": 0}
    history = models(gateway, path="/history")[2]["history"]
    assert history[0]["actor"] == "api:viewer" and "not an admin" in history[0]["refused"]


@pytest.mark.parametrize("body, status", [
    ({"weights": {"1": 60, "2": 30}}, 400),          # not 100
    ({"weights": {"1": 50, "999": 50}}, 404),        # no such version
    ({"weights": {"1": "x"}}, 400),
])
def test_invalid_routes_are_refused(body, status, served, gateway, restore_route):
    got, _, reply = models(gateway, "POST", "/route", body)
    assert got == status, reply
    assert served_route(gateway) == {"1": 100, "2": 0}


def test_two_edits_of_the_same_revision_one_wins_one_conflicts(served, gateway, restore_route):
    for _ in range(10):          # the revision is the document's: the training tests' models move it meanwhile
        revision = models(gateway)[2]["revision"]
        first = models(gateway, "POST", "/mirror", {"version": 2, "on": False}, revision=revision)
        if first[0] != 409:
            break
    second = models(gateway, "POST", "/canary", {"version": 2, "percent": 20}, revision=revision)
    assert first[0] == 200 and first[2]["revision"] == revision + 1, first
    assert second[0] == 409 and second[2]["error"] == "conflict", second
    route = models(gateway)[2]
    assert route["revision"] >= revision + 1
    assert {r["version"]: r["weight"] for r in route["versions"]}[2] == 0        # the loser wrote nothing


def test_canary_promote_and_rollback_reach_predict(served, gateway, store, restore_route):
    status, _, body = models(gateway, "POST", "/canary", {"version": 2, "percent": 10})
    assert status == 200 and body["route"]["weights"] == {"1": 90, "2": 10}, body
    assert wait_until(lambda: served_route(gateway) == {"1": 90, "2": 10}, 15)
    status, _, body = models(gateway, "POST", "/promote", {"version": 2})
    assert status == 200 and body["route"]["weights"] == {"1": 0, "2": 100}
    assert wait_until(lambda: served_route(gateway) == {"1": 0, "2": 100}, 15)
    from portraits.synth import portrait, to_jpeg
    answer = http("POST", f"{gateway}/function/predict", to_jpeg(portrait(77)[0]), {"Content-Type": "image/jpeg"})[2]
    assert answer["version"] == 2                                                  # the promoted version answers
    status, _, body = models(gateway, "POST", "/rollback")
    assert status == 200 and body["route"]["weights"] == {"1": 90, "2": 10}       # the route before the promotion
    assert wait_until(lambda: served_route(gateway) == {"1": 90, "2": 10}, 15)
    changes = [h["change"] for h in models(gateway, path="/history")[2]["history"][:3]]
    assert "rollback" in changes[0] and "v2=100" in changes[1] and "v2=10" in changes[2]


def test_slack_edits_only_from_admins(served, gateway, restore_route):
    body = form("/models", "canary 2 10", user="U-not-admin")
    status, _, reply = http("POST", f"{gateway}/function/models", body.encode(), signed(body))
    assert status == 200 and reply["response_type"] == "ephemeral" and "only admins" in reply["text"], reply
    body = form("/models", "canary 2 10", user="UADMIN")                    # dev/test.sh: SLACK_ADMINS=T1:UADMIN
    status, _, reply = http("POST", f"{gateway}/function/models", body.encode(), signed(body))
    assert status == 200 and reply["response_type"] == "in_channel", reply
    assert "90%" in json.dumps(reply["blocks"])                              # the table after the edit
    assert wait_until(lambda: served_route(gateway) == {"1": 90, "2": 10}, 15)
    body = form("/models", "list")
    status, _, reply = http("POST", f"{gateway}/function/models", body.encode(), signed(body))
    assert status == 200 and "live" in json.dumps(reply["blocks"]) and "90%" in json.dumps(reply["blocks"])


def test_train_asks_the_trainer_through_kafka(served, gateway, settings):
    status, _, body = models(gateway, "POST", "/train")
    assert status == 200 and body["requested"] == "train", body
    records = read_topic(settings, settings.kafka.topics.commands, lambda r: r["actor"] == "api:local")
    assert records and records[-1]["command"] == "train" and records[-1]["model"] == served


def test_the_cli_prints_the_same_table(served, gateway):
    env = {**os.environ, "OPENFAAS_URL": gateway}
    result = subprocess.run([sys.executable, str(ROOT / "dev" / "models.py"), "list"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split()[:3] == ["version", "role", "weight"]
    assert any(line.split()[:2] == ["1", "live"] for line in result.stdout.splitlines())
    bad = subprocess.run([sys.executable, str(ROOT / "dev" / "models.py"), "canary", "2"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "Usage" in bad.stderr


def test_the_canary_policy_is_an_admin_edit_from_the_cli_api_and_slack(served, gateway, store, restore_route):
    env = {**os.environ, "OPENFAAS_URL": gateway}
    cli = subprocess.run([sys.executable, str(ROOT / "dev" / "models.py"), "auto", "on", "canary=25", "samples=6",
                          "alpha=0.01", "budget=50"], capture_output=True, text=True, env=env, timeout=60)
    try:
        assert cli.returncode == 0, cli.stderr
        auto = audited(store).control()[0].models[served].auto
        assert (auto.enabled, auto.canary_percent, auto.min_samples, auto.alpha, auto.max_samples) == (True, 25, 6, 0.01, 50)
        assert models(gateway, "POST", "/auto", {"on": True, "alpha": 0.7})[0] == 400            # not an error rate
        status, _, body = models(gateway, "POST", "/auto", {"on": False}, token=VIEWER)
        assert status == 403 and audited(store).control()[0].models[served].auto.enabled
        assert models(gateway, "POST", "/auto", {"on": "maybe"})[0] == 400
        assert models(gateway, "POST", "/auto", {"on": True, "canary": 150})[0] == 400
        body = form("/models", "auto off", user="UADMIN")
        status, _, reply = http("POST", f"{gateway}/function/models", body.encode(), signed(body))
        assert status == 200 and reply["response_type"] == "in_channel", reply
        auto = audited(store).control()[0].models[served].auto
        assert not auto.enabled and auto.min_samples == 6                   # off keeps the settings
        history = models(gateway, path="/history")[2]["history"]
        assert "auto-promotion off" in history[0]["change"] and history[1]["refused"]
    finally:
        models(gateway, "POST", "/auto", {"on": False})


def test_compare_replays_live_traffic_and_links_a_chart_through_media(served, gateway, settings, receiver):
    from tests.functions.test_predict import predict_bytes
    from portraits.synth import portrait, to_jpeg
    predict_bytes(gateway, to_jpeg(portrait(4242)[0]), user="U-compare")           # some live traffic
    status, _, body = models(gateway, path="/compare?a=1&b=2")
    assert status == 200, body
    assert body["replay"]["images"] >= 1 and 0 <= body["replay"]["agreement"] <= 1, body["replay"]
    assert set(body["replay"]["accuracy"]) == {"1", "2"}
    url = body["chart_url"]
    assert url.startswith(f"{gateway}/function/media/media/") and "sig=" in url
    status, headers, png = http("GET", url, auth=False)                      # the link is the credential
    assert status == 200 and headers["Content-Type"] == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert http("GET", url.replace("sig=", "sig=0"), auth=False)[0] == 403
    from layers.edge.media import MediaLinks
    exp = 99999999999
    forged = f"{gateway}/function/media/control/routing.json?exp={exp}&sig={MediaLinks(settings.media).signature('control/routing.json', exp)}"
    assert http("GET", forged, auth=False)[0] == 403                         # signed, but not an image it serves
    status, _, one = models(gateway, path="/1")
    status, headers, report = http("GET", one["report_url"], auth=False)
    assert status == 200 and report[:8] == b"\x89PNG\r\n\x1a\n"
    path = f"/commands/{uuid.uuid4().hex}"
    body = form("/models", "compare 1 2", path=path)
    status, _, reply = http("POST", f"{gateway}/function/models", body.encode(), signed(body), timeout=30)
    assert status == 200, reply
    if "Working" in reply["text"]:                         # a slow replay is delivered to response_url
        reply = wait_until(lambda: [p for p in receiver.posts if p[1] == path], timeout_s=20)[0][2]
    assert "hold-out accuracy" in json.dumps(reply["blocks"]) and "v1 vs v2" in reply["text"], reply
    assert_valid_blocks(reply)
    cli = subprocess.run([sys.executable, str(ROOT / "dev" / "models.py"), "compare", "1", "2"], capture_output=True,
                         text=True, env={**os.environ, "OPENFAAS_URL": gateway}, timeout=60)
    assert cli.returncode == 0 and cli.stdout.split("\n")[0].split() == ["v1", "v2"], cli.stdout + cli.stderr
    assert cli.stdout.split("\n")[1].startswith("hold-out accuracy") and "chart: " in cli.stdout


def test_voters_lists_estimated_reliability_for_admins_only(served, gateway, db):
    from layers.ledger import VoterBoard, decide
    from layers.ledger.votes import LatestVote
    sha = "e" * 64
    agreed = decide([LatestVote(sha, f"images/{sha}", "engineer", p, f"v-{p}", i) for i, p in enumerate(("api:x:a", "api:x:b"))])
    VoterBoard(db).save(served, agreed.voters.values(), watermark=2)
    status, _, body = models(gateway, "GET", "/voters")
    assert status == 200 and {v["principal"] for v in body["voters"]} == {"api:x:a", "api:x:b"}, body
    assert all(0 < v["accuracy"] < 1 and v["votes"] == 1 for v in body["voters"]) and "dawid-skene" in body["method"]
    assert models(gateway, "GET", "/voters", token=VIEWER)[0] == 403


def test_refused_edits_cannot_flood_the_log_or_disable_rollback(served, gateway, restore_route):
    """The review's attack: anyone with a token wrote refused edits until `rollback` saw nothing else. Refusals
    are limited per principal (REFUSED_EDIT_RATE_LIMIT, 10 a minute), past it a 429 that writes nothing; and
    rollback undoes the last applied change whatever follows it. (Last in this file: it uses up the viewer's
    refusals for a minute; test_openapi accepts the documented 429.)"""
    status, _, body = models(gateway, "POST", "/canary", {"version": 2, "percent": 20})      # an admin's change
    assert status == 200 and body["route"]["weights"] == {"1": 80, "2": 20}, body
    codes = [models(gateway, "POST", "/promote", {"version": 2}, token=VIEWER)[0] for _ in range(12)]
    assert set(codes[:2]) == {403} and codes[-1] == 429 and set(codes) == {403, 429}, codes
    refused = codes.count(403)
    page = models(gateway, path=f"/history?limit={refused + 1}")[2]
    assert [h["actor"] for h in page["history"][:refused]] == ["api:viewer"] * refused and page["next"] is not None
    assert "canary" in page["history"][refused]["change"] or "route" in page["history"][refused]["change"]
    older = models(gateway, path=f"/history?limit=5&before={page['next']}")[2]["history"]
    assert older and all(h["id"] < page["next"] for h in older)
    status, _, body = models(gateway, "POST", "/rollback", {})
    assert status == 200 and body["route"]["weights"] == {"1": 100, "2": 0}, body
    assert wait_until(lambda: served_route(gateway) == {"1": 100, "2": 0}, 15)
