"""Every JSON-RPC error path, over /rpc (no handshake) and the handshake era of /mcp."""

from __future__ import annotations

import httpx
import pytest

from tests.libmcp.conftest import rpc

HANDSHAKE = {"MCP-Protocol-Version": "2025-11-25"}


def post_raw(url: str, path: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}{path}", content=content, headers={"Content-Type": "application/json", **(headers or {})}
    )


@pytest.mark.parametrize("path", ["/rpc", "/mcp"])
def test_malformed_json_is_a_parse_error(demo, path):
    url, _ = demo
    response = post_raw(url, path, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert response.status_code == 400
    body = response.json()
    assert body["id"] is None
    assert body["error"]["code"] == -32700


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"42", "must be an object"),
        (b'{"id": 1, "method": "ping"}', '"jsonrpc" must be "2.0"'),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}', '"jsonrpc" must be "2.0"'),
        (b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}', '"id" must be a string or an integer'),
        (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', '"id" must be a string or an integer'),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 7}', '"method" must be a string'),
        (b'{"jsonrpc": "2.0", "id": 1}', '"method" is missing'),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}', '"params" must be an object'),
    ],
)
def test_invalid_requests_name_the_problem(demo, payload, problem):
    url, _ = demo
    response = post_raw(url, "/rpc", payload)
    error = response.json()["error"]
    assert error["code"] == -32600
    assert problem in error["message"]


def test_unknown_method(demo):
    url, _ = demo
    body = rpc(url, "resources/list").json()
    assert body == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32601, "message": "Method not found: resources/list"},
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "nope", "arguments": {}}, "Unknown tool: nope"),
        ({"arguments": {}}, 'tools/call needs a "name" string'),
        ({"name": "echo", "arguments": ["text"]}, '"arguments" must be an object'),
    ],
)
def test_bad_tool_calls_are_invalid_params(demo, params, message):
    url, _ = demo
    error = rpc(url, "tools/call", params).json()["error"]
    assert error["code"] == -32602
    assert message in error["message"]


def test_a_crashing_tool_is_an_internal_error_without_its_details(demo):
    url, server = demo
    response = rpc(url, "tools/call", {"name": "crash", "arguments": {}})
    error = response.json()["error"]
    assert response.status_code == 200
    assert error["code"] == -32603
    assert error["message"] == "Internal error"
    assert len(error["data"]["requestId"]) == 16
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert server.metrics.tool_call_count("crash", "internal_error") == 1


def test_batches_on_rpc_answer_each_request_and_skip_notifications(demo):
    url, _ = demo
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "b", "method": "nope"},
        7,
    ]
    responses = httpx.post(f"{url}/rpc", json=batch).json()
    assert responses == [
        {"jsonrpc": "2.0", "id": "a", "result": {}},
        {"jsonrpc": "2.0", "id": "b", "error": {"code": -32601, "message": "Method not found: nope"}},
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "Invalid request: a JSON-RPC message must be an object"},
        },
    ]


def test_rpc_notifications_only_get_no_content(demo):
    url, _ = demo
    response = httpx.post(f"{url}/rpc", json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert response.status_code == 204
    assert response.content == b""


def test_empty_batch_is_invalid(demo):
    url, _ = demo
    response = httpx.post(f"{url}/rpc", json=[])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


def test_tools_list_pages_with_cursors_and_rejects_forged_ones(demo):
    url, _ = demo
    names, cursor, pages = [], None, 0
    while True:
        result = rpc(url, "tools/list", {"cursor": cursor} if cursor else {}).json()["result"]
        names += [tool["name"] for tool in result["tools"]]
        pages += 1
        cursor = result.get("nextCursor")
        if cursor is None:
            break
    assert names == ["echo", "noop", "sleep", "fail", "crash"]
    assert pages == 3
    error = rpc(url, "tools/list", {"cursor": "not-a-cursor"}).json()["error"]
    assert error["code"] == -32602
    assert "not-a-cursor" in error["message"]


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_initialize_echoes_every_known_handshake_revision(demo, version):
    url, _ = demo
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    response = rpc(url, "initialize", params, path="/mcp")
    result = response.json()["result"]
    assert result["protocolVersion"] == version
    assert result["serverInfo"]["name"] == "demo"
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["instructions"] == "A service for testing libmcp."
    assert "mcp-session-id" not in response.headers


@pytest.mark.parametrize("version", ["2026-07-28", "1999-01-01", "latest", None])
def test_initialize_with_any_other_version_gets_the_newest_handshake_revision(demo, version):
    url, _ = demo
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    result = rpc(url, "initialize", params, path="/mcp").json()["result"]
    assert result["protocolVersion"] == "2025-11-25"


def test_streamable_notifications_and_responses_are_accepted_without_body(demo):
    url, _ = demo
    for message in (
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}},
        {"jsonrpc": "2.0", "id": 9, "result": {}},
    ):
        response = httpx.post(f"{url}/mcp", json=message, headers=HANDSHAKE)
        assert response.status_code == 202
        assert response.content == b""


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_stateless_mcp_endpoint_refuses_get_and_delete(demo, method):
    url, _ = demo
    response = httpx.request(method, f"{url}/mcp", headers=HANDSHAKE)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("version", "allowed"),
    [(None, True), ("2025-03-26", True), ("2025-06-18", False), ("2025-11-25", False), ("2026-07-28", False)],
)
def test_batches_exist_only_before_2025_06_18(demo, version, allowed):
    url, _ = demo
    headers = {"MCP-Protocol-Version": version} if version else {}
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"},
    ]
    response = httpx.post(f"{url}/mcp", json=batch, headers=headers)
    if allowed:
        assert response.status_code == 200
        assert [item["id"] for item in response.json()] == [1, 2]
    else:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32600


def test_unknown_protocol_version_header_is_refused_with_the_supported_list(demo):
    url, _ = demo
    response = rpc(url, "tools/list", path="/mcp", headers={"MCP-Protocol-Version": "2030-01-01"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32022
    assert error["data"]["requested"] == "2030-01-01"
    assert "2026-07-28" in error["data"]["supported"]
    assert "2025-11-25" in error["data"]["supported"]
