"""The one table of a service's HTTP endpoints.

The app routes from it, the OpenAPI document lists it, the guards take the open paths from it, and
the discovery document names the transports from it. An endpoint is either an MCP endpoint (a JSON-RPC
``POST`` answered by libmcp's own pipeline: guard, body, intake, transport, server) or a page that
FastAPI serves (health, metrics, discovery, the SSE stream, the 405s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    # The operation id in the OpenAPI document, and the key of the endpoint's handler in create_app.
    name: str
    summary: str
    mcp: bool = False
    documented: bool = True
    # Answered without a bearer token even when MCP_AUTH_TOKENS is set.
    open: bool = False


ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint("POST", "/mcp", "mcp_post", "Streamable HTTP (2025-03-26 .. 2026-07-28)", mcp=True),
    Endpoint("GET", "/mcp", "mcp_get", "Not available in stateless mode (405)"),
    Endpoint("DELETE", "/mcp", "mcp_delete", "Not available in stateless mode (405)"),
    Endpoint("POST", "/rpc", "rpc_post", "Plain JSON-RPC 2.0", mcp=True),
    Endpoint("GET", "/sse", "sse_get", "Legacy HTTP+SSE stream (2024-11-05)", documented=False),
    Endpoint(
        "POST", "/messages", "messages_post", "Legacy HTTP+SSE message endpoint", mcp=True, documented=False
    ),
    Endpoint("GET", "/health", "health", "Liveness and backend health", open=True),
    Endpoint("GET", "/metrics", "metrics", "Prometheus metrics"),
    Endpoint("GET", "/.well-known/mcp", "discovery", "Service description and tools"),
)

OPEN_PATHS: Final = frozenset(endpoint.path for endpoint in ENDPOINTS if endpoint.open)
# The transports the discovery document names, by the name clients configure.
TRANSPORTS: Final = {"streamable_http": "/mcp", "sse": "/sse", "rpc": "/rpc"}


def endpoint(method: str, path: str) -> Endpoint | None:
    """The endpoint for ``method`` (any case) on ``path``, if the table has it."""
    method = method.upper()
    for candidate in ENDPOINTS:
        if candidate.method == method and candidate.path == path:
            return candidate
    return None
