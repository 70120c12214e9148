"""Shared fixtures. The services (MinIO, Kafka, the gateway) are real and already started by `make test`
(dev/test.sh); these fixtures only connect to them, on loopback."""
from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from layers.config import Settings
from layers.store import BlobStore

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
BIN = CACHE / "bin"
LOGS = CACHE / "run" / "logs"
GATEWAY = os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080")
API_TOKEN = os.environ.get("API_TOKEN", "")        # dev/lib.sh: the local client's token (its hash is in API_TOKENS)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def store(settings) -> BlobStore:
    s = BlobStore(settings.s3)
    assert s.ping(), f"MinIO is not answering at {settings.s3.endpoint}: run `make test`, which starts it"
    return s


@pytest.fixture
def uid() -> str:
    """A fresh id per test, so tests never see each other's keys, topics or groups."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def gateway() -> str:
    return GATEWAY


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "dev" / args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def db(settings):
    from layers.db import Database
    database = Database(settings.db)
    assert database.ping(), f"PostgreSQL is not answering at {settings.db.url!r}: run `make test`, which starts it"
    yield database
    database.close()


_audit_db: list = []


def audited(store: BlobStore):
    """The registry as the trainer and the models function open it: its changes audited in PostgreSQL (the
    test database; one connection pool for the session)."""
    from layers.db import Database
    from layers.registry import AuditLog, Registry
    if not _audit_db:
        _audit_db.append(Database(Settings.from_env().db))
    return Registry(store, AuditLog(_audit_db[0]))


MODEL_FIXTURES = {"bootstrapped", "served"}


# The code a bootstrapped backbone depends on: its architecture and training, the data and its splits, the
# preprocessing. (The heads, conversion, the learner, the reconciler, replay and the CLI do not change it;
# training_job/pipeline.py only reads the images for it, through layers/images.py.)
BACKBONE_SOURCES = ("training_job/model.py", "training_job/bootstrap.py", "training_job/examples.py",
                    "portraits/synth.py", "training_job/datasets.py", "layers/images.py")


def backbone_cache_key() -> str:
    """What a trained test backbone depends on: the training code, its configuration and the dataset's name.
    (The synthetic dataset is deterministic: its generator, portraits/synth.py, is one of the sources.)"""
    from training_job.__main__ import parser            # the CLI's defaults: TRAIN_* in the environment count
    from training_job.config import BACKBONE_PARAMS
    defaults = vars(parser().parse_args(["bootstrap"]))
    h = hashlib.sha256(json.dumps({k: defaults[k] for k in BACKBONE_PARAMS},
                                  sort_keys=True).encode())
    for name in BACKBONE_SOURCES:
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()[:24]


def cached_backbone(store: BlobStore) -> str | None:
    """The S3 key of a backbone trained by an earlier test session with exactly this code and configuration
    (a build cache: a cold cache trains one, AFTERDARK_TEST_FRESH_BACKBONE=1 always does)."""
    if os.environ.get("AFTERDARK_TEST_FRESH_BACKBONE") == "1":
        return None
    from layers.errors import NotFound, Unavailable
    from layers.registry import backbone_key
    try:
        fp = json.loads(store.get(f"test-cache/backbones/{backbone_cache_key()}.json").body)["fingerprint"]
        return backbone_key(fp) if store.exists(backbone_key(fp)) else None
    except (NotFound, KeyError, ValueError):
        return None
    except Unavailable:        # MinIO is not running: the bootstrap fails, and its log (in the fixture) says why
        return None


def run_dir() -> Path:
    """Files shared by every pytest process of one `make test` run (its xdist workers and its serial tail):
    keyed by the run's model name, which dev/test.sh makes fresh."""
    d = CACHE / "run" / "tests" / os.environ["MODEL_NAME"]
    d.mkdir(parents=True, exist_ok=True)
    return d


def once(name: str, action) -> bool:
    """Run `action` once per run across processes (a file lock and a marker); True where it ran here."""
    import fcntl
    with open(run_dir() / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = run_dir() / f"{name}.done"
        if done.exists():
            return False
        action()
        done.touch()
        return True


# Where a test runs when `make test` runs the suite on several workers (pytest-xdist; the scheduler below).
# The tests of the functions, and the layers' tests that use the stack's model or its servers, share the served
# model, its control document, the dating app's profiles and the session's servers on fixed ports (the image
# host, the Slack receiver), so they run in order on one worker; the gateway tests start gateways on fixed
# ports, so they too stay together. Every other test (the training tests use models of their own) runs
# wherever a worker is free. Tests marked `exclusive` stop a service, so dev/test.sh runs them alone afterwards.
SCOPES = {
    "shared-stack": ("tests/functions/", "tests/training_job/test_replay.py",
                     "tests/training_job/test_bootstrap.py::test_v1_and_v2",
                     *(f"tests/layers/{name}.py" for name in ("matching/test_matching", "edge/test_media",
                                                              "serving/test_memory_bounds",
                                                              "registry/test_registry_policy",
                                                              "serving/test_routing_runtime"))),
    "echo-gateways": ("tests/stack/test_gateway.py",),
}


def pytest_ignore_collect(collection_path, config):
    """The exclusive pass imports only the test files that mark a test exclusive (collecting the rest, to
    deselect it, costs a process seconds of CPU)."""
    if (os.environ.get("AFTERDARK_TEST_PASS") == "exclusive" and collection_path.is_file()
            and collection_path.name.startswith("test_") and collection_path.suffix == ".py"):
        return b"mark.exclusive" not in collection_path.read_bytes() or None
    return None


def pytest_configure(config):
    os.environ.setdefault("MODEL_NAME", f"test-{uuid.uuid4().hex[:8]}")     # before any xdist worker starts


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduling, with the tests of each of SCOPES in one scope (so on one worker, in order) and
    each other test a scope of its own. (Its `loadgroup` cannot be used: it renames test ids, which pytest 9
    ignores.)"""
    from xdist.scheduler import LoadScopeScheduling

    class SharedStackScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((scope for scope, prefixes in SCOPES.items() if nodeid.startswith(prefixes)), nodeid)
    return SharedStackScheduling(config, log)


def wait_for_the_stack() -> None:
    """dev/test.sh starts the stack while pytest starts and collects, and leaves start.sh's exit status in
    STACK_RC: wait for it (without STACK_RC, the stack is already running). A stack that did not start stops
    the run, with start.sh's reasons above."""
    rc = os.environ.get("STACK_RC")
    if not rc:
        return
    if not wait_until(Path(rc).exists, timeout_s=600, interval_s=0.2):
        pytest.exit("the stack did not start in 10 minutes", returncode=3)
    if Path(rc).read_text().strip() != "0":
        pytest.exit("the stack did not start (dev/start.sh says why, above)", returncode=3)


def pytest_collection_modifyitems(session, config, items):
    """Run the tests that need no model first, while the run's one bootstrap trains in the background (it
    takes minutes on 2 cores; most of the other tests wait on I/O)."""
    wait_for_the_stack()                      # before the bootstrap starts, and before any test
    after = os.environ.get("AFTERDARK_RUN_AFTER")   # the exclusive pass, started early: after the shared one
    if after and not wait_until(Path(after).exists, timeout_s=3600, interval_s=0.5):
        pytest.exit(f"{after} did not appear in an hour", returncode=3)
    twice = sorted(n for n, count in collections.Counter(i.nodeid for i in items).items() if count > 1)
    if twice:                            # xdist keys its work by test id: all but one of them would not run
        raise pytest.UsageError(f"tests with the same id: {twice}")
    needs_model = lambda item: bool(MODEL_FIXTURES & set(item.fixturenames))
    run_pass = os.environ.get("AFTERDARK_TEST_PASS")             # dev/test.sh: "shared", then "exclusive"
    if run_pass:
        keep = [i for i in items if (i.get_closest_marker("exclusive") is not None) == (run_pass == "exclusive")]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
    items.sort(key=lambda item: (needs_model(item), item.get_closest_marker("last") is not None))   # stable
    if any(needs_model(i) for i in items):
        once("bootstrap-started", start_bootstrap)


def start_bootstrap() -> None:
    """`python -m training_job bootstrap` for the run's model, detached: the `bootstrapped` fixture of every
    process waits for the exit status it leaves in the run's directory; dev/test.sh stops it if the run ends
    first."""
    settings = Settings.from_env()
    base = cached_backbone(BlobStore(settings.s3))
    args = ["--base", f"s3://{settings.s3.bucket}/{base}"] if base else []
    # v1 and v2 learn from the dataset alone: the votes the other tests cast meanwhile (arbitrary labels,
    # to test the protocol) would otherwise be in the bootstrap's consensus or not, as the race goes
    args += ["--min-votes-per-image", "1000000"]
    cmd = [sys.executable, "-m", "training_job", "bootstrap", "--model", os.environ["MODEL_NAME"], *args]
    log = LOGS / f"bootstrap-{os.environ['MODEL_NAME']}.log"
    (run_dir() / "bootstrap.cached").write_text("1" if base else "0")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    rc = run_dir() / "bootstrap.rc"
    proc = subprocess.Popen(["sh", "-c", '"$@" >"$LOG" 2>&1; echo $? >"$RC.tmp" && mv "$RC.tmp" "$RC"', "sh", *cmd],
                            cwd=ROOT, env={**env, "LOG": str(log), "RC": str(rc)}, start_new_session=True)
    (run_dir() / "bootstrap.pid").write_text(str(proc.pid))


@pytest.fixture(scope="session")
def model_name() -> str:
    """The model the test gateway's functions serve (dev/test.sh sets MODEL_NAME fresh for every run)."""
    return os.environ["MODEL_NAME"]


@pytest.fixture(scope="session")
def bootstrapped(model_name, store):
    """`python -m training_job bootstrap` with the default configuration, once per run, via the real CLI
    (started at collection, above)."""
    rc = run_dir() / "bootstrap.rc"
    assert wait_until(rc.exists, timeout_s=900, interval_s=0.5), "the bootstrap did not finish in 15 minutes"
    log = LOGS / f"bootstrap-{model_name}.log"
    assert rc.read_text().strip() == "0", log.read_text()[-5000:]

    def remember():                                                # the backbone, for the next run
        if (run_dir() / "bootstrap.cached").read_text() == "0":
            from layers.registry import Registry
            fp = Registry(store).metadata(model_name, 1).backbone["fingerprint"]
            store.put(f"test-cache/backbones/{backbone_cache_key()}.json", json.dumps({"fingerprint": fp}).encode())
    once("bootstrap-remembered", remember)
    return model_name


@pytest.fixture(scope="session")
def image_server() -> str:
    """The local image host (tests/imageserver.py) on the address dev/test.sh allow-lists for the functions."""
    from tests.imageserver import serve
    host, port = os.environ.get("TEST_IMAGE_SERVER", "127.0.0.1:8765").split(":")
    server = serve(host, int(port))
    yield f"http://{host}:{port}"
    server.shutdown()


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 30,
         auth: bool = True):
    """(status, headers, parsed JSON or raw bytes) for one request; never raises on HTTP errors.
    Sends the local API token (Authorization: Bearer) unless `auth=False` or the caller set Authorization."""
    import json
    import urllib.error
    import urllib.request
    headers = dict(headers or {})
    if auth and API_TOKEN and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {API_TOKEN}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, raw = err.code, dict(err.headers), err.read()
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw


def new_topic(settings, name: str) -> str:
    """Create a one-partition topic (the test broker creates none on first use) and return its name."""
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    return name


def wait_until(predicate, timeout_s: float = 30, interval_s: float = 0.2):
    import time
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    return predicate()


@pytest.fixture(scope="session")
def served(bootstrapped, gateway):
    """The bootstrapped model, once the predict function reports it ready (it polls the control document)."""
    def ready():
        status, _, body = http("GET", f"{gateway}/function/predict/status")
        return status == 200 and {"1", "2"} <= set(body["ready"]) and body
    assert wait_until(ready, timeout_s=60), http("GET", f"{gateway}/function/predict/status")
    return bootstrapped


@pytest.fixture(scope="session")
def serving(bootstrapped, gateway):
    """The run's model with every version that takes traffic ready in the predict function, whichever they are (the
    `exclusive` tests run after the `last` ones, which promote a newer one)."""
    def ready():
        status, _, body = http("GET", f"{gateway}/function/predict/status")
        taking = {str(v) for v, weight in body["route"]["weights"].items() if weight > 0} if status == 200 else {}
        return bool(taking) and taking <= {str(v) for v in body["ready"]}
    assert wait_until(ready, timeout_s=60), http("GET", f"{gateway}/function/predict/status")
    return bootstrapped
