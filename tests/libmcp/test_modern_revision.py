"""The stateless 2026-07-28 revision on POST /mcp: discover, the envelope ladder, result shapes."""

from __future__ import annotations

import httpx
import pytest

from tests.libmcp.conftest import MODERN, envelope, modern_post


def test_discover_describes_the_server_without_a_handshake(demo):
    url, _ = demo
    response = modern_post(url, "server/discover")
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["supportedVersions"] == [MODERN]
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "demo"
    assert result["instructions"] == "A service for testing libmcp."
    assert result["cacheScope"] in ("private", "public")
    assert "mcp-session-id" not in response.headers


def test_results_carry_result_type_and_server_info(demo):
    url, _ = demo
    listed = modern_post(url, "tools/list").json()["result"]
    called = modern_post(url, "tools/call", {"name": "echo", "arguments": {"text": "hi"}}).json()["result"]
    for result in (listed, called):
        assert result["resultType"] == "complete"
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["version"] == "0.0.1"
    assert called["structuredContent"] == {"text": "hi", "greeting": "hello"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"MCP-Protocol-Version": "2025-11-25"}, "MCP-Protocol-Version"),
        ({"Mcp-Method": "tools/list"}, "Mcp-Method"),
        ({"Mcp-Name": "noop"}, "Mcp-Name"),
        ({"Mcp-Name": "=?base64?bm9vcA==?="}, "Mcp-Name"),
    ],
)
def test_headers_that_disagree_with_the_body_are_header_mismatches(demo, headers, message):
    url, _ = demo
    response = modern_post(url, "tools/call", {"name": "echo", "arguments": {"text": "x"}}, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32020
    assert message in error["message"]
    assert response.json()["id"] == 1


def test_base64_wrapped_mcp_name_matches(demo):
    url, _ = demo
    response = modern_post(
        url,
        "tools/call",
        {"name": "echo", "arguments": {"text": "x"}},
        headers={"Mcp-Name": "=?base64?ZWNobw==?="},
    )
    assert response.status_code == 200
    assert response.json()["result"]["isError"] is False


def test_a_duplicated_routing_header_is_a_header_mismatch(demo):
    url, _ = demo
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": envelope()}}
    headers = [("MCP-Protocol-Version", MODERN), ("Mcp-Method", "tools/list"), ("Mcp-Method", "tools/list")]
    response = httpx.post(f"{url}/mcp", json=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020


def test_envelope_without_version_header_is_a_header_mismatch(demo):
    url, _ = demo
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": envelope()}}
    response = httpx.post(f"{url}/mcp", json=body, headers={"Mcp-Method": "tools/list"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020


def test_envelope_under_a_handshake_version_header_is_a_header_mismatch(demo):
    url, _ = demo
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": envelope()}}
    response = httpx.post(f"{url}/mcp", json=body, headers={"MCP-Protocol-Version": "2025-11-25"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020


def test_an_unsupported_envelope_version_is_refused_with_the_supported_list(demo):
    url, _ = demo
    body = {"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {"_meta": envelope("2027-01-01")}}
    headers = {"MCP-Protocol-Version": "2027-01-01", "Mcp-Method": "tools/list"}
    response = httpx.post(f"{url}/mcp", json=body, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32022
    assert error["data"]["requested"] == "2027-01-01"
    assert MODERN in error["data"]["supported"]


@pytest.mark.parametrize(
    ("meta", "missing"),
    [
        (None, "params._meta must be an object"),
        ({"io.modelcontextprotocol/protocolVersion": MODERN}, "io.modelcontextprotocol/clientCapabilities"),
    ],
)
def test_an_incomplete_envelope_is_invalid_params(demo, meta, missing):
    url, _ = demo
    params = {} if meta is None else {"_meta": meta}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params}
    response = httpx.post(
        f"{url}/mcp", json=body, headers={"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32602
    assert missing in error["message"]


@pytest.mark.parametrize("method", ["initialize", "ping", "resources/list"])
def test_methods_outside_the_revision_are_not_found(demo, method):
    url, _ = demo
    response = modern_post(url, method)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == -32601


def test_unknown_tool_is_invalid_params_with_400(demo):
    url, _ = demo
    response = modern_post(url, "tools/call", {"name": "nope", "arguments": {}})
    assert response.status_code == 400
    assert response.json()["error"] == {"code": -32602, "message": "Unknown tool: nope"}


def test_notifications_are_acknowledged_with_202(demo):
    url, _ = demo
    response = modern_post(url, "notifications/cancelled", {"requestId": 1}, request_id=None)
    assert response.status_code == 202
    assert response.content == b""


def test_tool_errors_are_results_not_http_errors(demo):
    url, _ = demo
    response = modern_post(url, "tools/call", {"name": "fail", "arguments": {"reason": "nope"}})
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": "nope"}]
    assert result["resultType"] == "complete"
