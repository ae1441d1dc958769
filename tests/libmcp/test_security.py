"""Bearer auth, Origin validation, body limit and per-client rate limit, on every transport."""

from __future__ import annotations

import httpx
import pytest

from tests.libmcp.conftest import rpc
from tests.libmcp.demo_service import service
from tests.support.clients import sdk_client

ENDPOINTS = [
    ("POST", "/mcp"),
    ("POST", "/rpc"),
    ("GET", "/sse"),
    ("POST", "/messages?session_id=x"),
    ("GET", "/metrics"),
    ("GET", "/.well-known/mcp"),
]


@pytest.fixture
def guarded(serve_service):
    url, server = serve_service(service, auth_tokens=["first-token", "second-token"])
    return url, server


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Basic Zmlyc3QtdG9rZW4=", "Bearer", "first-token", "Bearer first-token-x"],
)
def test_every_endpoint_but_health_needs_a_valid_bearer_token(guarded, method, path, authorization):
    url, _ = guarded
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.request(method, f"{url}{path}", headers=headers, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="mcp-sse"')
    assert "first-token" not in response.text


def test_health_stays_open_for_probes(guarded):
    url, _ = guarded
    response = httpx.get(f"{url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("token", ["first-token", "second-token"])
async def test_any_configured_token_is_accepted_by_the_sdk_client(guarded, token):
    url, _ = guarded
    async with sdk_client(url, token=token) as client:
        result = await client.call_tool("echo", {"text": "in"})
    assert result.structured_content["text"] == "in"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:3000", True),
        ("http://127.0.0.1:8080", True),
        ("http://[::1]:5173", True),
        ("https://chat.example.org", True),
        ("https://evil.example.com", False),
        ("http://localhost.evil.example.com", False),
        ("null", False),
    ],
)
def test_origin_is_checked_when_present(serve_service, origin, allowed):
    url, _ = serve_service(service, allowed_origins=["https://chat.example.org"])
    response = rpc(url, "ping", headers={"Origin": origin})
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert origin in response.json()["error"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example\\@localhost",  # urlsplit reads the host as localhost
        "http://localhost@evil.example",
        "http://user:secret@localhost:3000",
        "http://localhost.evil.example",
        "null",
        "http://localhost:3000/path",
        "http://localhost:3000/",
        "http://localhost:3000?x=1",
        "localhost:3000",
        "file:///etc/passwd",
    ],
)
@pytest.mark.parametrize("path", ["/rpc", "/mcp"])
def test_an_origin_that_is_not_exactly_scheme_host_port_is_refused(demo, origin, path):
    url, server = demo
    response = rpc(url, "ping", path=path, headers={"Origin": origin})
    assert response.status_code == 403
    assert "is not allowed" in response.json()["error"]
    assert server.metrics.http_rejections.labels("origin")._value.get() == 1


def test_a_preflight_from_an_evil_origin_is_refused(demo):
    url, _ = demo
    response = httpx.options(f"{url}/mcp", headers={"Origin": "http://evil.example\\@localhost"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "values", [("Bearer first-token", "Bearer second-token"), ("Bearer wrong", "Bearer first-token")]
)
def test_two_authorization_headers_are_refused_with_400(guarded, values):
    url, server = guarded
    headers = httpx.Headers([("Authorization", value) for value in values])
    response = rpc(url, "ping", headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "more than one Authorization header"}
    assert server.metrics.http_rejections.labels("duplicate_header")._value.get() == 1


def test_two_origin_headers_are_refused_too(demo):
    url, _ = demo
    headers = httpx.Headers([("Origin", "http://localhost:3000"), ("Origin", "https://evil.example")])
    assert rpc(url, "ping", headers=headers).status_code == 400


def test_a_204_carries_no_content_length(serve_service):
    url, _ = serve_service(service)
    preflight = httpx.options(
        f"{url}/mcp", headers={"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"}
    )
    notifications_only = httpx.post(f"{url}/rpc", json=[{"jsonrpc": "2.0", "method": "notifications/x"}])
    for response in (preflight, notifications_only):
        assert response.status_code == 204
        assert "content-length" not in response.headers
        assert "transfer-encoding" not in response.headers
        assert response.content == b""


def test_no_origin_and_any_host_header_are_fine(demo):
    url, _ = demo
    response = rpc(url, "ping", headers={"Host": "mcp-filesystem.mcp.svc.cluster.local:8003"})
    assert response.status_code == 200


def test_star_allows_every_origin(serve_service):
    url, _ = serve_service(service, allowed_origins=["*"])
    assert rpc(url, "ping", headers={"Origin": "https://anything.example"}).status_code == 200


@pytest.mark.parametrize("path", ["/mcp", "/rpc", "/messages?session_id=x"])
def test_oversized_bodies_are_refused_with_413(serve_service, path):
    url, _ = serve_service(service, max_body_bytes=1000)
    big = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x" * 2000}},
    }
    response = httpx.post(f"{url}{path}", json=big)
    assert response.status_code == 413
    assert "MCP_MAX_BODY_BYTES" in response.json()["error"]


def test_oversized_chunked_bodies_are_refused_too(serve_service):
    url, _ = serve_service(service, max_body_bytes=1000)

    def chunks():
        for _ in range(10):
            yield b"x" * 500

    response = httpx.post(f"{url}/rpc", content=chunks())
    assert response.status_code == 413


def test_requests_beyond_the_rate_limit_get_429_with_retry_after(serve_service):
    url, server = serve_service(service, rate_limit_per_minute=60, rate_limit_burst=3)
    call = {"name": "noop", "arguments": {}}
    statuses = [rpc(url, "tools/call", call).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = rpc(url, "tools/call", call)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Rate limit exceeded" in limited.json()["error"]["message"]
    # Every method counts, not only tool calls.
    assert rpc(url, "tools/list").status_code == 429
    assert server.metrics.http_rejections.labels("rate_limit")._value.get() == 3


def test_rate_limits_are_per_client_token(serve_service):
    url, _ = serve_service(service, auth_tokens=["a", "b"], rate_limit_per_minute=60, rate_limit_burst=1)
    call = {"name": "noop", "arguments": {}}
    assert rpc(url, "tools/call", call, headers={"Authorization": "Bearer a"}).status_code == 200
    assert rpc(url, "tools/call", call, headers={"Authorization": "Bearer a"}).status_code == 429
    assert rpc(url, "tools/call", call, headers={"Authorization": "Bearer b"}).status_code == 200


def test_browser_preflight_from_an_allowed_origin_gets_cors_headers_without_a_token(serve_service):
    url, _ = serve_service(service, auth_tokens=["t"])
    response = httpx.options(
        f"{url}/mcp", headers={"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "http://localhost:6274"
    assert "mcp-protocol-version" in response.headers["access-control-allow-headers"]
    assert "authorization" in response.headers["access-control-allow-headers"]


def test_responses_to_allowed_origins_expose_the_mcp_headers(serve_service):
    url, _ = serve_service(service, auth_tokens=["t"])
    response = rpc(url, "ping", headers={"Origin": "http://localhost:6274", "Authorization": "Bearer t"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:6274"
    assert "mcp-session-id" in response.headers["access-control-expose-headers"]
    unauthorized = rpc(url, "ping", headers={"Origin": "http://localhost:6274"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == "http://localhost:6274"


def test_preflight_from_a_foreign_origin_is_refused(serve_service):
    url, _ = serve_service(service)
    response = httpx.options(f"{url}/mcp", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_every_refusal_is_logged_with_its_reason_but_never_the_token(serve_service, caplog):
    url, _ = serve_service(service, auth_tokens=["right"], allowed_origins=[])
    with caplog.at_level("WARNING", logger="libmcp.security"):
        rpc(url, "ping", headers={"Authorization": "Bearer wrong-secret"})
        rpc(url, "ping", headers={"Origin": "https://evil.example.com"})
    reasons = [record.fields["reason"] for record in caplog.records if hasattr(record, "fields")]
    assert reasons == ["auth", "origin"]
    assert all(record.fields["path"] == "/rpc" for record in caplog.records)
    assert "wrong-secret" not in caplog.text
