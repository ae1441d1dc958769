"""docs/API.md is checked against the running app so it cannot drift from the code."""

from __future__ import annotations

import re

import httpx

from libmcp import protocol
from tests.libmcp.demo_service import service
from tests.support.servers import REPO_ROOT

API_DOC = (REPO_ROOT / "docs" / "API.md").read_text(encoding="utf-8")


def test_every_route_of_the_running_app_is_documented(serve_service):
    url, _ = serve_service(service)
    schema = httpx.get(f"{url}/openapi.json").json()
    documented = set(re.findall(r"`(?:GET|POST|DELETE)(?:, (?:GET|POST|DELETE))? (/[^ `?]*)", API_DOC))
    documented |= set(re.findall(r"`(?:GET|DELETE) (/[^ `]*)`", API_DOC))
    for path in [*schema["paths"], "/sse", "/messages", "/openapi.json"]:
        assert path in API_DOC, f"{path} is served but not documented"
    assert documented, "the endpoint table was not found"


def test_every_error_code_is_documented():
    codes = [
        value
        for name, value in vars(protocol).items()
        if name.isupper() and isinstance(value, int) and value < -32000
    ]
    assert len(codes) >= 8
    for code in codes:
        if code == protocol.MISSING_REQUIRED_CLIENT_CAPABILITY:
            continue  # no tool here requires a client capability, so the service never sends it
        assert f"| {code} |" in API_DOC, f"error code {code} is not documented"


def test_every_http_status_the_guards_send_is_documented():
    sources = "".join(
        (REPO_ROOT / "libmcp" / name).read_text()
        for name in (
            "security.py",
            "app.py",
            "transports/_http.py",
            "transports/sse.py",
            "transports/streamable_http.py",
            "transports/rpc.py",
        )
    )
    statuses = {int(code) for code in re.findall(r"\b(4\d\d|503)\b", sources)}
    assert {401, 403, 413, 429, 503} <= statuses
    for status in statuses:
        assert str(status) in API_DOC, f"HTTP {status} is produced but not documented"


def test_metric_names_in_the_doc_exist(serve_service):
    url, _ = serve_service(service)
    exposed = httpx.get(f"{url}/metrics").text
    for name in re.findall(r"`(mcp_[a-z_]+)", API_DOC):
        base = name.removesuffix("_total")
        assert base in exposed, f"{name} is documented but not exposed"
