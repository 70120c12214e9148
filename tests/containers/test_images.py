"""The images `make images` built (dev/images.sh), and the test gateway running them (make test-containers:
AFTERDARK_RUNTIME=containers): within their size budgets, non-root, holding only what they need, and each
function served from its own container under the of-watchdog inside it.

Under a plain `make test` (functions as processes) this module is skipped; `make test-containers` and
`.ci/run` run it, with the functions' and Slack's tests, against the containers."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import CACHE, http

pytestmark = pytest.mark.skipif(os.environ.get("AFTERDARK_RUNTIME") != "containers",
                                reason="the functions run as processes (make test-containers runs them as images)")

MB = 1_000_000
FUNCTION_BUDGET_MB = 400          # a Debian minbase with Python 3.11 is 123 MB of it (bench/RESULTS.md)
BUDGETS_MB = {"models": 450}      # matplotlib and fontTools (65 MB) draw /models compare's chart
TRAINER_BUDGET_MB = 2400          # TensorFlow is most of it


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=120).stdout.strip()


@pytest.fixture(scope="module")
def built() -> dict:
    """What make images measured (sizes in bytes, seconds per step)."""
    return json.loads((CACHE / "run" / "images.json").read_text())


def in_image(image: str, code: str) -> str:
    return docker("run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", code)


def test_every_image_is_within_its_budget(built):
    assert built["functions"], "no function image was measured"
    for image, size in built["functions"].items():
        name = image.rsplit("/", 1)[-1].split(":")[0]
        assert size <= BUDGETS_MB.get(name, FUNCTION_BUDGET_MB) * MB, (image, size / MB)
    for image, size in built["trainer"].items():
        assert size <= TRAINER_BUDGET_MB * MB, (image, size / MB)


def test_function_images_are_non_root_and_hold_no_tensorflow_generator_or_tests(built):
    probe = ("import importlib.util as u, os, json; print(json.dumps({'uid': os.getuid(), "
             "'found': [m for m in ('tensorflow', 'keras', 'portraits', 'training_job', 'tests', 'pip') if u.find_spec(m)], "
             "'files': sorted(os.listdir('/home/app/function'))}))")
    for image in built["functions"]:
        seen = json.loads(in_image(image, probe))
        assert seen["uid"] != 0 and seen["found"] == [], (image, seen)
        assert "wheels" not in seen["files"] and {"handler.py", "layers"} <= set(seen["files"]), (image, seen)


def test_the_trainer_image_has_tensorflow_and_is_non_root(built):
    (image,) = built["trainer"]
    seen = json.loads(in_image(image, "import os, json, importlib.util as u; "
                                      "print(json.dumps([os.getuid(), bool(u.find_spec('tensorflow'))]))"))
    assert seen[0] != 0 and seen[1] is True


def test_each_function_is_served_from_its_own_container(gateway):
    name = os.environ.get("GATEWAY_NAME", "gateway")
    assert (CACHE / "run" / f"{name}.watchdog").read_text().startswith("container:")
    running = set(docker("ps", "--format", "{{.Names}}").split())
    functions = {f["name"] for f in http("GET", f"{gateway}/system/functions")[2]}
    assert functions and {f"afterdark-{name}-{fn}" for fn in functions} <= running
    for fn in functions:       # the watchdog inside is the real of-watchdog, and the network is the pod's only
        inspect = json.loads(docker("inspect", f"afterdark-{name}-{fn}"))[0]
        assert inspect["Config"]["Cmd"] == ["fwatchdog"]
        pod = json.loads(docker("inspect", f"afterdark-{name}-{fn}-pod"))[0]
        assert inspect["HostConfig"]["NetworkMode"] == f"container:{pod['Id']}"
        assert pod["HostConfig"]["NetworkMode"] == "none" and inspect["Config"]["User"] == "app"
