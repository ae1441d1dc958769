"""Helpers of the github tests: the test token and JSON-RPC calls to the service."""

from __future__ import annotations

from typing import Any

import httpx

TOKEN = "test-token-7d1f0c2a9b"
"""The GITHUB_TOKEN the tests configure; it must never show up in a response or a log line."""


async def rpc(url: str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One plain JSON-RPC request to ``/rpc``; returns the whole response object."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{url}/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def call(url: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """``tools/call`` over ``/rpc``; returns the call result (content, structuredContent, isError)."""
    body = await rpc(url, "tools/call", {"name": tool, "arguments": arguments})
    assert "result" in body, body
    result: dict[str, Any] = body["result"]
    return result


def error_text(result: dict[str, Any]) -> str:
    assert result["isError"] is True, result
    assert "structuredContent" not in result
    text: str = result["content"][0]["text"]
    return text


async def get(url: str) -> httpx.Response:
    """A plain GET (``/health``, ``/metrics``) without blocking the test's event loop."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url)
