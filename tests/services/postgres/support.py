"""Calling the postgres service over plain JSON-RPC (``POST /rpc``) for fine-grained assertions."""

from __future__ import annotations

from typing import Any

import httpx


async def call(
    url: str, tool: str, arguments: dict[str, Any] | None = None, *, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """The ``tools/call`` result (content, structuredContent, isError) of one call."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments or {}},
    }
    if client is None:
        async with httpx.AsyncClient(timeout=60) as own:
            response = await own.post(f"{url}/rpc", json=body)
    else:
        response = await client.post(f"{url}/rpc", json=body)
    payload = response.json()
    assert "result" in payload, payload
    result: dict[str, Any] = payload["result"]
    return result


def ok(result: dict[str, Any]) -> dict[str, Any]:
    """The structured content of a successful call (fails the test with the error text otherwise)."""
    assert result["isError"] is False, result["content"][0]["text"]
    structured: dict[str, Any] = result["structuredContent"]
    return structured


def error(result: dict[str, Any]) -> str:
    """The text of an ``isError`` result."""
    assert result["isError"] is True, result.get("structuredContent")
    text: str = result["content"][0]["text"]
    return text


async def sql(url: str, query: str, *params: Any, **arguments: Any) -> dict[str, Any]:
    return await call(url, "execute_sql", {"query": query, "params": list(params), **arguments})
