"""Assemble one service's HTTP app: every transport, health, metrics and discovery on one port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libmcp import protocol
from libmcp.observability import METRICS_CONTENT_TYPE
from libmcp.security import RateLimiter, SecurityMiddleware, send_json
from libmcp.server import Server
from libmcp.transports._http import json_response
from libmcp.transports.rpc import RpcTransport
from libmcp.transports.sse import SseTransport
from libmcp.transports.streamable_http import StreamableHttpTransport

TRANSPORT_PATHS = {"streamable_http": "/mcp", "sse": "/sse", "sse_messages": "/messages", "rpc": "/rpc"}

_JSONRPC_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/JsonRpcMessage"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/JsonRpcMessage"}},
                ]
            }
        }
    },
}
_JSONRPC_SCHEMA = {
    "type": "object",
    "required": ["jsonrpc"],
    "properties": {
        "jsonrpc": {"type": "string", "enum": ["2.0"]},
        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "method": {"type": "string"},
        "params": {"type": "object"},
    },
}


def create_app(server: Server) -> FastAPI:
    """The FastAPI app of one service; ``app.state.sse`` lets the runner end streams on shutdown."""
    settings = server.server_settings
    limiter = RateLimiter(settings)
    sse = SseTransport(server, limiter, settings.sse_keepalive_s)
    streamable = StreamableHttpTransport(server, limiter)
    rpc = RpcTransport(server, limiter)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            sse.close_all()
            await server.stop()

    app = FastAPI(
        title=f"mcp-sse {server.service.name}",
        version=server.service.version,
        description=server.service.instructions or "",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # libmcp makes the spans (one per tool call, MCP semantic conventions) and the metrics itself.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.server = server
    app.state.sse = sse

    async def health(request: Request) -> Response:
        healthy, body = await server.health()
        return json_response(body, 200 if healthy else 503)

    async def metrics(request: Request) -> Response:
        return Response(server.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def discovery(request: Request) -> Response:
        return json_response(describe(server))

    jsonrpc = {"requestBody": _JSONRPC_BODY}
    app.add_api_route(
        "/mcp",
        streamable.handle_post,
        methods=["POST"],
        openapi_extra=jsonrpc,
        summary="Streamable HTTP (2025-03-26 .. 2026-07-28)",
    )
    for method in ("GET", "DELETE"):
        app.add_api_route(
            "/mcp",
            streamable.handle_get_or_delete,
            methods=[method],
            summary="Not available in stateless mode (405)",
            operation_id=f"mcp_{method.lower()}",
        )
    app.add_api_route(
        "/rpc", rpc.handle_post, methods=["POST"], openapi_extra=jsonrpc, summary="Plain JSON-RPC 2.0"
    )
    app.add_api_route(
        "/sse",
        sse.handle_stream,
        methods=["GET"],
        summary="Legacy HTTP+SSE stream (2024-11-05)",
        include_in_schema=False,
    )
    app.add_api_route(
        "/messages",
        sse.handle_message,
        methods=["POST"],
        openapi_extra=jsonrpc,
        summary="Legacy HTTP+SSE message endpoint",
        include_in_schema=False,
    )
    app.add_api_route("/health", health, methods=["GET"], summary="Liveness and backend health")
    app.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")
    app.add_api_route("/.well-known/mcp", discovery, methods=["GET"], summary="Service description and tools")
    _add_jsonrpc_schema(app)
    hot_paths = {
        ("POST", "/mcp"): streamable.handle_post,
        ("POST", "/rpc"): rpc.handle_post,
        ("POST", "/messages"): sse.handle_message,
        ("GET", "/sse"): sse.handle_stream,
    }
    app.add_middleware(TransportRouter, routes=hot_paths)
    app.add_middleware(SecurityMiddleware, settings=settings, metrics=server.metrics)
    app.add_middleware(ShutdownGuard)
    return app


Endpoint = Callable[[Request], Awaitable[Response]]


class TransportRouter:
    """Send MCP traffic straight to its transport; FastAPI keeps the rest and documents every route.

    The routes above stay registered for the OpenAPI description, but a tool call skips FastAPI's
    routing and dependency resolution, which cost more than the whole JSON-RPC dispatch.
    """

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                response = await endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ShutdownGuard:
    """Answer 503 + Retry-After, not a bare 500, for a call that shutdown cut off after the grace period."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            # The server cancels requests only when its graceful-shutdown period has run out.
            if started:
                raise
            await send_json(send, 503, {"error": "the service is shutting down; retry"}, {"retry-after": "1"})


def describe(server: Server) -> dict[str, Any]:
    """The discovery document: built from the live tool registry, never written by hand."""
    return {
        "name": server.service.name,
        "title": server.service.title,
        "version": server.service.version,
        "instructions": server.service.instructions,
        "protocolVersions": [*protocol.HANDSHAKE_VERSIONS, *protocol.MODERN_VERSIONS],
        "transports": {
            "streamable_http": TRANSPORT_PATHS["streamable_http"],
            "sse": TRANSPORT_PATHS["sse"],
            "rpc": TRANSPORT_PATHS["rpc"],
        },
        "health": "/health",
        "metrics": "/metrics",
        "authentication": "bearer" if server.server_settings.auth_tokens else "none",
        "tools": [
            {
                "name": definition["name"],
                "title": definition["title"],
                "description": definition["description"],
                "annotations": definition["annotations"],
            }
            for definition in server.tool_definitions
        ],
    }


def _add_jsonrpc_schema(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["JsonRpcMessage"] = _JSONRPC_SCHEMA
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
