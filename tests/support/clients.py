"""Official MCP SDK clients configured the way real callers configure them."""

from __future__ import annotations

from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def sdk_client(url: str, *, token: str | None = None, mode: str = "auto", timeout: float = 30.0) -> Client:
    """A ``mcp.Client`` for ``{url}/mcp``; ``token`` is sent as a bearer token on every request.

    ``mode="auto"`` is Open WebUI's path (``server/discover`` first), ``"legacy"`` LiteLLM's.
    """
    headers: dict[str, Any] = {"Authorization": f"Bearer {token}"} if token else {}
    http_client = httpx2.AsyncClient(headers=headers, timeout=timeout)
    return Client(streamable_http_client(f"{url.rstrip('/')}/mcp", http_client=http_client), mode=mode)
