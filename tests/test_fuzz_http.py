"""Property: schemathesis cases built from a service's own ``/openapi.json`` never get a 5xx or hang.

Every operation the description lists (``POST /mcp`` and ``/rpc`` with their JSON-RPC bodies, ``GET``
and ``DELETE /mcp``, ``/health``, ``/metrics``, ``/.well-known/mcp``) is called with cases that fit the
description (positive) and cases that break it (negative), against real services: filesystem on a
temporary directory, fetch with a loopback page server, and github against the GitHub API stand-in
(``harness/fake_github.py``; the real API is unreachable here). The HTTP layer is libmcp's,
the same in every service; ``tests/test_fuzz_tools.py`` reaches postgres and monitoring through it.

Asserted: no 5xx, a JSON body wherever one comes back on the JSON-RPC endpoints, never a ``-32603``
internal error. Bounded: ``max_examples`` per operation and mode, 15 s per request.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.test_fuzz_tools import Target, fetch_target, filesystem_target, github_target

EXAMPLES = 25
TIMEOUT_S = 15.0
STARTERS: dict[str, Callable[[], contextlib.AbstractContextManager[Target]]] = {
    "filesystem": filesystem_target,
    "fetch": fetch_target,
    "github": github_target,
}
OPERATIONS = [
    ("POST", "/mcp"),
    ("GET", "/mcp"),
    ("DELETE", "/mcp"),
    ("POST", "/rpc"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/.well-known/mcp"),
]
JSON_RPC_PATHS = {"/mcp", "/rpc"}
# Negative cases need something to break: only the operations with a request body have one.
CASES = [
    pytest.param(method, path, mode, id=f"{mode.value}-{method} {path}")
    for method, path in OPERATIONS
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or method == "POST"
]


@pytest.fixture(scope="module")
def described() -> Iterator[Callable[[str], tuple[str, Any]]]:
    """``described(name)``: the running service's URL and the schemathesis schema of its /openapi.json."""
    with ExitStack() as stack:
        started: dict[str, tuple[str, Any]] = {}

        def get(name: str) -> tuple[str, Any]:
            if name not in started:
                target = stack.enter_context(STARTERS[name]())
                started[name] = (target.url, schemathesis.openapi.from_url(f"{target.url}/openapi.json"))
            return started[name]

        yield get


def test_the_description_lists_every_http_operation(described: Callable[[str], tuple[str, Any]]) -> None:
    _, schema = described("filesystem")
    listed = {
        (method.upper(), path) for path, methods in schema.raw_schema["paths"].items() for method in methods
    }
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize("service_name", sorted(STARTERS))
@pytest.mark.parametrize(("method", "path", "mode"), CASES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_no_described_request_gets_a_server_error(
    described: Callable[[str], tuple[str, Any]],
    service_name: str,
    method: str,
    path: str,
    mode: GenerationMode,
    data: st.DataObject,
) -> None:
    url, schema = described(service_name)
    operation = schema[path][method]
    case = data.draw(operation.as_strategy(generation_mode=mode), label="case")
    response = case.call(base_url=url, timeout=TIMEOUT_S)
    case.validate_response(response, checks=[not_a_server_error])
    if path in JSON_RPC_PATHS and response.content:
        _check_json_rpc_answer(response)


def _check_json_rpc_answer(response: requests.Response) -> None:
    payload = response.json()
    for entry in payload if isinstance(payload, list) else [payload]:
        assert isinstance(entry, dict), response.text[:300]
        error = entry.get("error")
        if isinstance(error, dict):
            assert error.get("code") != -32603, json.dumps(entry)[:300]
            assert isinstance(error.get("message"), str) and error["message"], json.dumps(entry)[:300]


def test_the_description_documents_every_status_and_media_type_answered(
    described: Callable[[str], tuple[str, Any]],
) -> None:
    from schemathesis.checks import content_type_conformance, status_code_conformance

    url, schema = described("filesystem")
    failures: list[str] = []
    for method, path in OPERATIONS:
        operation = schema[path][method]

        @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def conforms(case: Any) -> None:
            response = case.call(base_url=url, timeout=TIMEOUT_S)
            case.validate_response(response, checks=[status_code_conformance, content_type_conformance])

        try:
            conforms()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
            failures.append(f"{method} {path}: {str(exc).splitlines()[0][:200]}")
    assert not failures, "\n".join(failures)
