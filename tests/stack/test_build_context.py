"""faas-cli (the real one, built by dev/install.sh) accepts stack.yml: shrinkwrapped build contexts hold the
handler, the template and the shared layer; `generate` yields valid Function resources."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import BIN, ROOT


def faas_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    exe = BIN / "faas-cli"
    if not exe.exists():
        pytest.fail("faas-cli is not installed: dev/install.sh builds it")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def stack() -> dict:
    return yaml.safe_load((ROOT / "stack.yml").read_text())


def test_shrinkwrap_puts_handler_template_and_layer_in_every_context(tmp_path, stack):
    # build in a copy so the test never touches the working tree's build/
    for item in ("stack.yml", "template", "functions", "layers", "portraits", "training_job"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    result = faas_cli("build", "--shrinkwrap", "-f", "stack.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, fn in stack["functions"].items():
        ctx = tmp_path / "build" / name
        assert (ctx / "Dockerfile").read_text() == (ROOT / "template" / fn["lang"] / "Dockerfile").read_text()
        assert (ctx / "index.py").exists() and (ctx / "template.yml").exists()
        assert (ctx / "function" / "handler.py").read_text() == (ROOT / fn["handler"] / "handler.py").read_text()
        assert (ctx / "function" / "layers" / "__init__.py").exists()
        assert (ctx / "function" / "layers" / "requirements.txt").exists()
        shipped = {p.name for p in (ctx / "function").iterdir()}
        assert not shipped & {"portraits", "training_job", "tests", "bench", "dev"}, (name, shipped)  # no generator
        for line in (ctx / "Dockerfile").read_text().splitlines():     # every COPY source is in the context
            words = line.split()
            if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
                sources = [w for w in words[1:-1] if not w.startswith("--") and "[" not in w]   # a glob may match none
                assert all((ctx / src).exists() for src in sources), (name, line)


def test_generate_gives_function_resources(stack):
    result = faas_cli("generate", "-f", "stack.yml")
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["metadata"]["name"] for d in docs} == set(stack["functions"])
    for d in docs:
        assert d["apiVersion"] == "openfaas.com/v1" and d["kind"] == "Function"
        fn = stack["functions"][d["metadata"]["name"]]
        assert d["spec"]["name"] == d["metadata"]["name"]
        assert d["spec"]["image"]
        assert sorted(d["spec"].get("secrets", [])) == sorted(fn.get("secrets", []))
        assert set(fn.get("environment", {})) <= set(d["spec"]["environment"])


def test_training_job_manifests_and_dockerfile():
    docs = [d for d in yaml.safe_load_all((ROOT / "training_job/deploy/training-job.yaml").read_text()) if d]
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert {(d["kind"], name) for name, d in by_name.items()} == {
        ("Deployment", "training-job"), ("Deployment", "decoy-archiver"), ("Job", "training-job-bootstrap")}
    args = {name: d["spec"]["template"]["spec"]["containers"][0]["args"] for name, d in by_name.items()}
    assert args["training-job"] == ["consume"] and args["decoy-archiver"] == ["archive"]
    from dataclasses import fields
    from training_job.config import TrainConfig
    known = {f"TRAIN_{f.name.upper()}" for f in fields(TrainConfig)}
    for doc in docs:                                        # every TRAIN_ variable names a real setting
        for container in doc["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", []) if e["name"].startswith("TRAIN_")}
            assert names <= known, names - known
    assert args["training-job-bootstrap"][0] == "bootstrap"
    dockerfile = (ROOT / "training_job/Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "training_job"]' in dockerfile
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            for src in (w for w in words[1:-1] if "[" not in w):   # a glob (the wheelhouse) may match none
                assert (ROOT / src).exists(), src


KUBERNETES_VERSION = "1.34.0"      # the API the manifests are checked against (schemas bundled in kubernetes-validate)


def test_kubernetes_manifests_pass_a_strict_schema_check():
    """The trainer's Deployment and the bootstrap Job against the Kubernetes API's own JSON schemas, strictly
    (an unknown or misspelt field fails). The Function resources are OpenFaaS' CRD, for which the validator has
    no schema: faas-cli generate checks those (above)."""
    import copy
    import kubernetes_validate as kv
    docs = [d for d in yaml.safe_load_all((ROOT / "training_job/deploy/training-job.yaml").read_text()) if d]
    for doc in docs:
        kv.validate(doc, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(docs[0])
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = ["Always"]    # a list, not a string
    broken["spec"]["replica"] = 1                                                           # misspelt
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, KUBERNETES_VERSION, strict=True)


def test_slack_manifests_point_at_the_gateway(tmp_path):
    import subprocess, sys
    out = subprocess.run([sys.executable, str(ROOT / "dev/slack.py"), "manifest", "--gateway", "https://gw.example.org",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load((tmp_path / "ai-monkey.manifest.yml").read_text())
    assert doc["display_information"]["name"] == "AI Monkey"
    cmds = {c["command"]: c["url"] for c in doc["features"]["slash_commands"]}
    stack = yaml.safe_load((ROOT / "stack.yml").read_text())
    assert cmds["/predict"] == "https://gw.example.org/function/predict" and cmds["/fix"] == "https://gw.example.org/function/fix"
    assert all(url.rsplit("/", 1)[1] in stack["functions"] for url in cmds.values())
    assert doc["oauth_config"]["scopes"]["bot"] == ["commands", "chat:write", "files:read"]
    assert set(cmds) == {"/predict", "/fix", "/predict-rendezvous", "/models", "/healthz"}
    app = "https://gw.example.org/function/ai-monkey"
    assert doc["settings"]["interactivity"] == {"is_enabled": True, "request_url": app}
    assert doc["settings"]["event_subscriptions"] == {"request_url": app, "bot_events": ["app_home_opened"]}
    assert {s["callback_id"] for s in doc["features"]["shortcuts"]} == {"classify_image", "correct_image"}
    assert doc["features"]["app_home"]["home_tab_enabled"] is True
    assert "ensemble" in next(c for c in doc["features"]["slash_commands"] if c["command"] == "/models")["usage_hint"]
    dating = yaml.safe_load((tmp_path / "slack-after-dark.manifest.yml").read_text())
    assert dating["oauth_config"]["scopes"]["bot"] == ["commands", "users.profile:read"]
    assert [c["command"] for c in dating["features"]["slash_commands"]] == ["/afterdark"]
    assert dating["settings"]["interactivity"]["request_url"] == "https://gw.example.org/function/afterdark"
    assert (ROOT / "slack/ai-monkey.manifest.yml").read_text() == yaml.safe_dump(
        yaml.safe_load((ROOT / "slack/ai-monkey.manifest.yml").read_text()), sort_keys=False)
