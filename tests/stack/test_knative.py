"""The Knative Serving manifests generated from stack.yml (dev/knative.py): one Service per function, with the
same image, environment, secrets, limits and scale bounds; each Service's pod spec passes the Kubernetes
API's own schema, strictly."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT
from tests.stack.test_build_context import KUBERNETES_VERSION

sys.path.insert(0, str(ROOT / "dev"))
from gateway import load_stack  # noqa: E402
from knative import SECRETS_DIR, manifests  # noqa: E402

ENV = {"REGISTRY": "registry.example/sad", "TAG": "1.2.3"}


@pytest.fixture(scope="module")
def generated() -> dict[str, dict]:
    return {s["metadata"]["name"]: s for s in manifests(ROOT / "stack.yml", "afterdark", ENV)}


@pytest.fixture(scope="module")
def stack() -> dict:
    return load_stack(ROOT / "stack.yml", ENV)["functions"]


def test_one_service_per_function_with_the_same_image_env_secrets_limits_and_scale(generated, stack):
    assert set(generated) == set(stack)
    for name, fn in stack.items():
        svc = generated[name]
        assert (svc["apiVersion"], svc["kind"]) == ("serving.knative.dev/v1", "Service")
        template = svc["spec"]["template"]
        container = template["spec"]["containers"][0]
        assert container["image"] == fn["image"] == f"registry.example/sad/{name}:1.2.3"
        assert {e["name"]: e["value"] for e in container["env"]} == {k: str(v) for k, v in fn["environment"].items()}
        assert container["resources"] == {k: fn[k] for k in ("limits", "requests") if k in fn} and fn["limits"]
        mounted = template["spec"]["volumes"][0]["projected"]["sources"]
        assert [s["secret"]["name"] for s in mounted] == fn["secrets"]
        assert container["volumeMounts"][0]["mountPath"] == SECRETS_DIR
        scale = template["metadata"]["annotations"]
        assert scale["autoscaling.knative.dev/min-scale"] == fn["labels"]["com.openfaas.scale.min"]
        assert scale["autoscaling.knative.dev/max-scale"] == fn["labels"]["com.openfaas.scale.max"]
        assert container["readinessProbe"]["httpGet"]["path"] == fn["annotations"]["com.openfaas.health.http.path"]
    predict = generated["predict"]["spec"]["template"]
    assert predict["metadata"]["annotations"]["autoscaling.knative.dev/metric"] == "rps"
    assert predict["metadata"]["annotations"]["autoscaling.knative.dev/target"] == "50"
    assert predict["spec"]["timeoutSeconds"] == 20                                  # exec_timeout: 20s


def test_each_pod_spec_passes_the_kubernetes_schema_strictly(generated):
    import kubernetes_validate as kv
    for name, svc in generated.items():
        pod_spec = copy.deepcopy(svc["spec"]["template"]["spec"])
        for knative_only in ("timeoutSeconds", "containerConcurrency"):     # RevisionSpec's own fields
            pod_spec.pop(knative_only)
        kv.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec},
                    KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(generated["predict"]["spec"]["template"]["spec"])
    broken.pop("timeoutSeconds")
    broken.pop("containerConcurrency")
    broken["containers"][0]["env"][0]["valu"] = "misspelt"
    with pytest.raises(kv.ValidationError):
        kv.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": broken},
                    KUBERNETES_VERSION, strict=True)


def test_the_command_writes_the_same_manifests_as_yaml(stack):
    out = subprocess.run([sys.executable, str(ROOT / "dev" / "knative.py")], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "TAG": "dev"}).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [d["metadata"]["name"] for d in docs] == sorted(d["metadata"]["name"] for d in docs)
    assert all(d["kind"] == "Service" for d in docs) and len(docs) == len(stack)
