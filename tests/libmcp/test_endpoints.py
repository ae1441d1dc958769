"""The endpoint table is the one list of routes: the app, the OpenAPI document and discovery follow it."""

from __future__ import annotations

import httpx
import pytest

from libmcp import openapi, protocol
from libmcp.endpoints import ENDPOINTS, OPEN_PATHS, TRANSPORTS, endpoint
from libmcp.protocol import RpcError
from tests.libmcp.demo_service import service as demo_service
from tests.libmcp.test_openapi import served_app
from tests.support.servers import run_app


def test_every_endpoint_has_its_answers_documented_and_nothing_else_does() -> None:
    assert set(openapi.ENDPOINT_ANSWERS) == {entry.name for entry in ENDPOINTS}
    assert len({(entry.method, entry.path) for entry in ENDPOINTS}) == len(ENDPOINTS)
    assert OPEN_PATHS == {"/health"}
    assert endpoint("post", "/mcp") is ENDPOINTS[0] and endpoint("PUT", "/mcp") is None


def test_the_openapi_document_lists_exactly_the_documented_endpoints() -> None:
    description = served_app(demo_service).openapi()

    listed = {
        (method.upper(), path): operation["operationId"]
        for path, operations in description["paths"].items()
        for method, operation in operations.items()
    }
    assert listed == {(entry.method, entry.path): entry.name for entry in ENDPOINTS if entry.documented}
    assert description["paths"]["/mcp"]["post"]["requestBody"] == openapi.JSONRPC_REQUEST_BODY


def test_the_app_answers_every_endpoint_of_the_table_and_only_those() -> None:
    app = served_app(demo_service)
    with run_app(app) as url, httpx.Client(base_url=url, timeout=15) as client:
        for entry in ENDPOINTS:
            if entry.path == "/sse":
                with client.stream("GET", "/sse") as stream:
                    assert stream.status_code == 200
                continue
            body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}' if entry.mcp else None
            reply = client.request(entry.method, entry.path, content=body, params={"session_id": "none"})
            assert reply.status_code != 404 or entry.path == "/messages", (entry, reply.text)
            if entry.path == "/messages":  # the table's route, refusing an unknown session by name
                assert "unknown or closed session" in reply.json()["error"]
        assert client.get("/nowhere").status_code == 404
        assert client.put("/mcp").status_code == 405
        assert client.get("/.well-known/mcp").json()["transports"] == TRANSPORTS


@pytest.mark.parametrize(
    ("header", "envelope", "expected"),
    [
        (None, False, protocol.HANDSHAKE),
        (None, True, protocol.MODERN),
        ("2025-06-18", False, protocol.HANDSHAKE),
        ("2026-07-28", False, protocol.MODERN),
        ("2099-01-01", True, protocol.MODERN),
    ],
)
def test_a_post_to_mcp_is_routed_to_the_revision_its_header_and_body_speak(
    header: str | None, envelope: bool, expected: protocol.Revision
) -> None:
    meta = {"_meta": {protocol.PROTOCOL_VERSION_META_KEY: "2026-07-28"}} if envelope else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": meta}

    assert protocol.route_streamable_http(header, body) is expected


@pytest.mark.parametrize(
    ("header", "envelope", "code"),
    [
        ("2099-01-01", False, protocol.UNSUPPORTED_PROTOCOL_VERSION),
        ("2025-06-18", True, protocol.HEADER_MISMATCH),
    ],
)
def test_a_post_whose_header_contradicts_its_body_is_refused_naming_why(
    header: str, envelope: bool, code: int
) -> None:
    meta = {"_meta": {protocol.PROTOCOL_VERSION_META_KEY: "2026-07-28"}} if envelope else {}

    error = protocol.route_streamable_http(
        header, {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": meta}
    )

    assert isinstance(error, RpcError) and error.code == code


def test_what_differs_between_revisions_is_held_by_the_revision() -> None:
    assert not protocol.MODERN.answers("initialize") and protocol.HANDSHAKE.answers("initialize")
    assert protocol.RPC.answers("ping") and all(
        r.answers("tools/call") for r in (protocol.HANDSHAKE, protocol.MODERN)
    )
    assert protocol.MODERN.stamps_results and not protocol.HANDSHAKE.stamps_results
    assert protocol.MODERN.http_status(protocol.METHOD_NOT_FOUND) == 404
    assert protocol.HANDSHAKE.http_status(protocol.METHOD_NOT_FOUND) == 200
    assert protocol.HANDSHAKE.allows_batches("2025-03-26") and not protocol.HANDSHAKE.allows_batches(
        "2025-06-18"
    )
