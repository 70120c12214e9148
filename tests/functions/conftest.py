"""Functions are exercised through the test gateway (dev/test.sh: 127.0.0.1:8088) -> watchdog -> handler."""
import pytest

from tests.conftest import http, wait_until


@pytest.fixture(scope="session")
def served(bootstrapped, gateway):
    """The bootstrapped model, once the predict function reports it ready (it polls the control document)."""
    def ready():
        status, _, body = http("GET", f"{gateway}/function/predict/status")
        return status == 200 and {"1", "2"} <= set(body["ready"]) and body
    assert wait_until(ready, timeout_s=60), http("GET", f"{gateway}/function/predict/status")
    return bootstrapped
