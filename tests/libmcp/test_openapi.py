"""libmcp.openapi.document: the OpenAPI description lists every answer the HTTP layer gives, and only those.

Each status the description lists is provoked from a real service on loopback (the demo service, and a
service whose one backend check is down) and the answer is checked against the description with
schemathesis' own conformance checks: status code, media type, body schema and documented headers.
Then the provoked statuses must be exactly the documented ones, so the description names nothing the
code cannot send. The one answer not provoked is the 503 a request gets when shutdown cuts it off after
the grace period (tests/libmcp/test_shutdown.py); it is listed on every operation.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31

from libmcp import CheckContext, CheckResult, Server, ServerSettings, Service, create_app
from libmcp.openapi import JSONRPC_MESSAGE_SCHEMA, answers, document
from tests.libmcp.conftest import MODERN, envelope
from tests.libmcp.demo_service import service as demo_service
from tests.support.servers import run_app

TOKEN = "openapi-test-token"
MAX_BODY = 4096
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
OPERATIONS = {
    ("post", "/mcp"),
    ("get", "/mcp"),
    ("delete", "/mcp"),
    ("post", "/rpc"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/.well-known/mcp"),
}
# The statuses each operation can answer, read from libmcp/security.py, app.py and transports/.
SHUTDOWN = "503"
DOCUMENTED = {
    ("post", "/mcp"): {"200", "202", "400", "403", "404", "413", "429", SHUTDOWN},
    ("get", "/mcp"): {"403", "405", SHUTDOWN},
    ("delete", "/mcp"): {"403", "405", SHUTDOWN},
    ("post", "/rpc"): {"200", "204", "400", "403", "413", "429", SHUTDOWN},
    ("get", "/health"): {"200", "503"},
    ("get", "/metrics"): {"200", "403", SHUTDOWN},
    ("get", "/.well-known/mcp"): {"200", "403", SHUTDOWN},
}
AUTH_ONLY = {"401"}  # every operation but /health, when bearer tokens are configured

sick = Service("sick", version="0.0.1", title="Sick", instructions="A service whose backend is down.")


@sick.health_check("database")
async def database_down(ctx: CheckContext) -> CheckResult:
    return CheckResult("down", "the database stand-in refuses connections")


def served_app(service: Service, **mcp: Any) -> Any:
    return create_app(Server(service, None, ServerSettings.model_validate(mcp)))


@contextlib.contextmanager
def described(service: Service, **mcp: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """The service on loopback and its completed description (the generated one through ``document``)."""
    app = served_app(service, **mcp)
    with run_app(app) as url:
        yield url, document(app.openapi(), auth=bool(mcp.get("auth_tokens")))


def documented_statuses(description: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    return {
        (method, path): set(operation["responses"])
        for path, methods in description["paths"].items()
        for method, operation in methods.items()
    }


@pytest.mark.parametrize("auth", [False, True], ids=["no-auth", "bearer"])
def test_every_operation_documents_each_status_its_code_can_send(auth: bool) -> None:
    app = served_app(demo_service, **({"auth_tokens": [TOKEN]} if auth else {}))

    statuses = documented_statuses(document(app.openapi(), auth=auth))

    expected = {
        operation: found | (AUTH_ONLY if auth and operation[1] != "/health" else set())
        for operation, found in DOCUMENTED.items()
    }
    assert statuses == expected


@pytest.mark.parametrize("auth", [False, True], ids=["no-auth", "bearer"])
def test_the_completed_description_is_valid_openapi_3_1(auth: bool) -> None:
    description = document(served_app(demo_service).openapi(), auth=auth)

    jsonschema.Draft202012Validator(OPENAPI_31).validate(description)
    schemathesis.openapi.from_dict(description)  # schemathesis' loader accepts it
    assert description["components"]["schemas"]["JsonRpcMessage"] == JSONRPC_MESSAGE_SCHEMA


def test_the_completed_description_passes_openapi_spec_validator() -> None:
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="openapi-spec-validator is not installed"
    )
    for auth in (False, True):
        validator.validate(document(served_app(demo_service).openapi(), auth=auth))


def test_bearer_auth_is_a_security_scheme_required_everywhere_but_health() -> None:
    generated = served_app(demo_service, auth_tokens=[TOKEN]).openapi()

    with_auth, without = document(generated, auth=True), document(generated, auth=False)

    assert with_auth["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "One of the tokens in MCP_AUTH_TOKENS",
    }
    security = {
        (method, path): operation["security"]
        for path, methods in with_auth["paths"].items()
        for method, operation in methods.items()
    }
    assert security.pop(("get", "/health")) == []
    assert set(security) == OPERATIONS - {("get", "/health")}
    assert all(value == [{"bearerAuth": []}] for value in security.values())
    assert "securitySchemes" not in without["components"]
    assert all("security" not in op for methods in without["paths"].values() for op in methods.values())
    assert with_auth["paths"]["/mcp"]["post"]["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]


def test_document_does_not_change_its_input_and_only_its_last_application_counts() -> None:
    generated = served_app(demo_service).openapi()
    before = copy.deepcopy(generated)

    once = document(generated, auth=True)

    assert generated == before
    assert document(once, auth=True) == once
    assert document(once, auth=False) == document(generated, auth=False)


def test_the_legacy_sse_routes_are_described_when_a_description_lists_them() -> None:
    # They are left out of the served description (a fuzzer cannot end a stream); if listed, they are right.
    assert set(answers("get", "/sse", auth=False)) == {"200", "403", SHUTDOWN}
    assert answers("get", "/sse", auth=False)["200"]["content"].keys() == {"text/event-stream"}
    assert set(answers("post", "/messages", auth=True)) == {
        "202",
        "400",
        "401",
        "403",
        "404",
        "413",
        "429",
        "503",
    }
    assert answers("post", "/messages", auth=False)["202"]["content"].keys() == {"text/plain"}


# Every documented answer, provoked -------------------------------------------------------------------

Provoke = Callable[[str], requests.Response]


def post(path: str, body: Any, *, raw: bytes | None = None, **headers: str) -> Provoke:
    def send(url: str) -> requests.Response:
        data = raw if raw is not None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}", **headers}
        return requests.post(f"{url}{path}", data=data, headers=sent, timeout=15)

    return send


def call(method: str, path: str, **headers: str) -> Provoke:
    def send(url: str) -> requests.Response:
        sent = {"Authorization": f"Bearer {TOKEN}", **headers}
        return requests.request(method.upper(), f"{url}{path}", headers=sent, timeout=15)

    return send


def unauthenticated(method: str, path: str) -> Provoke:
    def send(url: str) -> requests.Response:
        return requests.request(method.upper(), f"{url}{path}", timeout=15)

    return send


TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
NOOP_CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "noop", "arguments": {}}}
NOTIFICATION = {"jsonrpc": "2.0", "method": "notifications/initialized"}
UNKNOWN_MODERN = {"jsonrpc": "2.0", "id": 3, "method": "no/such", "params": {"_meta": envelope()}}
EVIL_ORIGIN = {"Origin": "https://evil.example"}

# In order: every message counts toward the rate limit (a burst of 10, then 1 a minute), so the ten
# messages it allows come before the two it refuses (refusals by the guards in front count nothing).
PROVOKED: list[tuple[str, str, str, Provoke]] = [
    ("post", "/mcp", "200", post("/mcp", NOOP_CALL)),
    ("post", "/mcp", "200", post("/mcp", [TOOLS_LIST], **{"MCP-Protocol-Version": "2025-03-26"})),
    ("post", "/mcp", "202", post("/mcp", NOTIFICATION)),
    ("post", "/mcp", "400", post("/mcp", None, raw=b"{not json")),
    (
        "post",
        "/mcp",
        "404",
        post("/mcp", UNKNOWN_MODERN, **{"MCP-Protocol-Version": MODERN, "Mcp-Method": "no/such"}),
    ),
    ("post", "/mcp", "413", post("/mcp", None, raw=b"[" + b" " * MAX_BODY + b"]")),
    ("post", "/mcp", "403", post("/mcp", TOOLS_LIST, **EVIL_ORIGIN)),
    ("post", "/mcp", "401", unauthenticated("post", "/mcp")),
    ("get", "/mcp", "405", call("get", "/mcp")),
    ("get", "/mcp", "403", call("get", "/mcp", **EVIL_ORIGIN)),
    ("get", "/mcp", "401", unauthenticated("get", "/mcp")),
    ("delete", "/mcp", "405", call("delete", "/mcp")),
    ("delete", "/mcp", "403", call("delete", "/mcp", **EVIL_ORIGIN)),
    ("delete", "/mcp", "401", unauthenticated("delete", "/mcp")),
    ("post", "/rpc", "200", post("/rpc", TOOLS_LIST)),
    ("post", "/rpc", "200", post("/rpc", [TOOLS_LIST, NOTIFICATION])),
    ("post", "/rpc", "204", post("/rpc", NOTIFICATION)),
    ("post", "/rpc", "400", post("/rpc", [])),
    ("post", "/rpc", "413", post("/rpc", None, raw=b"[" + b" " * MAX_BODY + b"]")),
    ("post", "/mcp", "429", post("/mcp", NOOP_CALL)),
    ("post", "/rpc", "429", post("/rpc", NOOP_CALL)),
    ("post", "/rpc", "403", post("/rpc", TOOLS_LIST, **EVIL_ORIGIN)),
    ("post", "/rpc", "401", unauthenticated("post", "/rpc")),
    ("get", "/health", "200", unauthenticated("get", "/health")),
    ("get", "/health", "200", call("get", "/health", **EVIL_ORIGIN)),
    ("get", "/metrics", "200", call("get", "/metrics")),
    ("get", "/metrics", "403", call("get", "/metrics", **EVIL_ORIGIN)),
    ("get", "/metrics", "401", unauthenticated("get", "/metrics")),
    ("get", "/.well-known/mcp", "200", call("get", "/.well-known/mcp")),
    ("get", "/.well-known/mcp", "403", call("get", "/.well-known/mcp", **EVIL_ORIGIN)),
    ("get", "/.well-known/mcp", "401", unauthenticated("get", "/.well-known/mcp")),
]


def conforms(description: dict[str, Any], method: str, path: str, response: requests.Response) -> None:
    operation = schemathesis.openapi.from_dict(description)[path][method.upper()]
    operation.Case().validate_response(response, checks=CHECKS)


def test_every_documented_answer_is_given_and_conforms_to_the_description() -> None:
    provoked: dict[tuple[str, str], set[str]] = {}
    mcp = {
        "auth_tokens": [TOKEN],
        "max_body_bytes": MAX_BODY,
        "rate_limit_per_minute": 1,
        "rate_limit_burst": 10,
    }
    with described(demo_service, **mcp) as (url, description):
        for method, path, status, provoke in PROVOKED:
            response = provoke(url)
            assert str(response.status_code) == status, (method, path, response.text[:300])
            conforms(description, method, path, response)
            provoked.setdefault((method, path), set()).add(status)
    with described(sick) as (url, description):
        response = requests.get(f"{url}/health", timeout=15)
        assert response.status_code == 503 and response.json()["status"] == "degraded"
        conforms(description, "get", "/health", response)
        provoked[("get", "/health")].add("503")

    documented = documented_statuses(document(served_app(demo_service, **mcp).openapi(), auth=True))
    not_provoked = {operation: statuses - provoked[operation] for operation, statuses in documented.items()}
    assert set(documented) == OPERATIONS
    assert not_provoked == {
        operation: set() if operation == ("get", "/health") else {SHUTDOWN} for operation in OPERATIONS
    }


def test_an_answer_the_description_does_not_list_is_caught() -> None:
    """The conformance checks used above do fail on a mismatch (here: /metrics validated as discovery)."""
    with described(demo_service) as (url, description):
        response = requests.get(f"{url}/metrics", timeout=15)
        with pytest.raises(FailureGroup):
            conforms(description, "get", "/.well-known/mcp", response)


@pytest.mark.parametrize("auth", [False, True], ids=["no-auth", "bearer"])
def test_the_served_description_is_the_completed_one(auth: bool) -> None:
    mcp = {"auth_tokens": [TOKEN]} if auth else {}
    with described(demo_service, **mcp) as (url, description):
        served = requests.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)

    assert served.json() == description
