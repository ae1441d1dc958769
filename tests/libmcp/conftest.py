from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from libmcp import Server
from tests.libmcp.demo_service import service

MODERN = "2026-07-28"


@pytest.fixture
def demo(serve_service: Callable[..., tuple[str, Server]]) -> tuple[str, Server]:
    """The demo service on a loopback port with default settings."""
    return serve_service(service)


def envelope(version: str = MODERN) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    }


def modern_post(
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    request_id: int | str | None = 1,
) -> httpx.Response:
    """POST one 2026-07-28 request with a matching envelope and routing headers (overridable)."""
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "method": method,
        "params": {**(params or {}), "_meta": envelope()},
    }
    if request_id is not None:
        body["id"] = request_id
    sent = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if method == "tools/call" and params:
        sent["Mcp-Name"] = params["name"]
    sent.update(headers or {})
    return httpx.post(f"{url}/mcp", json=body, headers=sent)


def rpc(
    url: str, method: str, params: dict[str, Any] | None = None, path: str = "/rpc", **kwargs: Any
) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return httpx.post(f"{url}{path}", json=body, **kwargs)
