"""The JSON API against its OpenAPI 3.1 contract (docs/openapi.yaml, served by the gateway at /openapi.yaml):
schemathesis generates requests from the document, a bounded number per operation, and every answer must be
documented (status, content type, body schema) and never a 500. It calls as a client without the admin
scope, so no generated request can move traffic."""
from __future__ import annotations

import functools
import os

import pytest
import yaml

from tests.conftest import ROOT, http

DOCUMENT = ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# One test per operation, named by it: schemathesis's own parametrize gives every operation the same test id,
# which pytest-xdist's scheduler keys its work by, so it ran one operation of the thirteen. The operations are
# read with PyYAML: importing schemathesis costs a pytest process seconds of CPU, so only the test imports it
# (and its pytest plugin is off: pytest.ini).
OPERATIONS = [(method.upper(), path) for path, item in yaml.safe_load(DOCUMENT.read_text())["paths"].items()
              for method in item if method in METHODS]
VIEWER = os.environ.get("API_TOKEN_VIEWER", "")


@functools.cache
def schema():
    import schemathesis
    return schemathesis.openapi.from_path(DOCUMENT)


def test_an_independent_validator_accepts_the_document():
    """openapi-spec-validator, not schemathesis, on OpenAPI 3.1: schemathesis read two descriptions with a
    comma inside a flow mapping as a truncated description and a bogus key, and said nothing."""
    from openapi_spec_validator import OpenAPIV31SpecValidator
    from openapi_spec_validator.readers import read_from_filename
    spec, _ = read_from_filename(str(ROOT / "docs" / "openapi.yaml"))
    errors = [e.message for e in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == []


def test_the_gateway_serves_the_document(gateway):
    status, headers, body = http("GET", f"{gateway}/openapi.yaml", auth=False)
    assert status == 200 and (body if isinstance(body, bytes) else body.encode()).startswith(b"openapi: 3.1.0")


@pytest.mark.parametrize("method, path", OPERATIONS, ids=lambda value: value)
def test_every_answer_matches_the_contract(method, path, served, gateway):
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                   status_code_conformance)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operation = schema()[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def answers_as_documented(case):
        case.call_and_validate(base_url=gateway, headers={"Authorization": f"Bearer {VIEWER}"}, checks=checks)
    answers_as_documented()


def test_every_operation_of_the_document_is_tested():
    """The operations above, read with PyYAML, are schemathesis's own."""
    assert sorted(OPERATIONS) == sorted((op.method.upper(), op.path) for op in
                                        (result.ok() for result in schema().get_all_operations()))
