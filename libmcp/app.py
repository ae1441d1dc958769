"""Assemble one service's HTTP app: every transport, health, metrics and discovery on one port."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from libmcp import protocol
from libmcp.http import HttpReply, HttpRequest, json_reply
from libmcp.observability import METRICS_CONTENT_TYPE
from libmcp.openapi import JSONRPC_REQUEST_BODY, document
from libmcp.security import Admission, RateLimiter, RequestGuard
from libmcp.server import Server
from libmcp.transports._http import Intake
from libmcp.transports.rpc import RpcTransport
from libmcp.transports.sse import SseTransport
from libmcp.transports.streamable_http import StreamableHttpTransport

TRANSPORT_PATHS = {"streamable_http": "/mcp", "sse": "/sse", "sse_messages": "/messages", "rpc": "/rpc"}


def create_app(server: Server) -> FastAPI:
    """The ASGI app of one service; ``app.state.sse`` lets the runner end streams on shutdown."""
    settings = server.server_settings
    # Batch size and rate limit: one check that every transport runs on every POST.
    intake = Intake(server, RateLimiter(settings))
    sse = SseTransport(server, intake, settings.sse_keepalive_s)
    streamable = StreamableHttpTransport(server, intake)
    rpc = RpcTransport(server, intake)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await server.start()
        # Everything alive now lives as long as the process: keep it out of the collector's full passes,
        # which would otherwise rescan it and stall every call in flight (a p99 cost).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            sse.close_all()
            await server.stop()

    app = ServiceApp(
        guard=RequestGuard(settings, server.metrics),
        routes={
            ("POST", "/mcp"): streamable.handle_post,
            ("POST", "/rpc"): rpc.handle_post,
            ("POST", "/messages"): sse.handle_message,
        },
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
        return _json_response(body, 200 if healthy else 503)

    async def metrics(request: Request) -> Response:
        return Response(server.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def discovery(request: Request) -> Response:
        return _json_response(describe(server))

    async def not_in_stateless_mode(request: Request) -> Response:
        # Stateless: there is no standalone GET stream and no session to delete.
        return Response(status_code=405, headers={"Allow": "POST"})

    # The MCP routes are answered by ServiceApp before FastAPI routing; they are registered here too so
    # that the OpenAPI description documents them.
    jsonrpc = {"requestBody": JSONRPC_REQUEST_BODY}
    app.add_api_route(
        "/mcp",
        _answered_by_service_app,
        methods=["POST"],
        openapi_extra=jsonrpc,
        summary="Streamable HTTP (2025-03-26 .. 2026-07-28)",
        operation_id="mcp_post",
    )
    for method in ("GET", "DELETE"):
        app.add_api_route(
            "/mcp",
            not_in_stateless_mode,
            methods=[method],
            summary="Not available in stateless mode (405)",
            operation_id=f"mcp_{method.lower()}",
        )
    app.add_api_route(
        "/rpc",
        _answered_by_service_app,
        methods=["POST"],
        openapi_extra=jsonrpc,
        summary="Plain JSON-RPC 2.0",
        operation_id="rpc_post",
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
        _answered_by_service_app,
        methods=["POST"],
        openapi_extra=jsonrpc,
        summary="Legacy HTTP+SSE message endpoint",
        include_in_schema=False,
    )
    app.add_api_route("/health", health, methods=["GET"], summary="Liveness and backend health")
    app.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")
    app.add_api_route("/.well-known/mcp", discovery, methods=["GET"], summary="Service description and tools")
    generated = app.openapi
    description: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not description:
            description.update(document(generated(), auth=bool(settings.auth_tokens)))
        return description

    app.openapi = openapi  # type: ignore[method-assign]
    return app


Route = Callable[[HttpRequest], Awaitable[HttpReply]]
SHUTTING_DOWN = json_reply({"error": "the service is shutting down; retry"}, 503, {"Retry-After": "1"})


class ServiceApp(FastAPI):
    """FastAPI, with the guards in front of every route and MCP traffic answered before FastAPI's stack.

    A tool call goes guard -> transport -> reply, with no Starlette request or response objects and no
    middleware layers: those cost more than the whole JSON-RPC dispatch. Everything else (health,
    metrics, discovery, the SSE stream, OpenAPI) goes through FastAPI as usual, behind the same guards.
    """

    def __init__(
        self, *, guard: RequestGuard, routes: Mapping[tuple[str, str], Route], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.guard = guard
        self.mcp_routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        admission = self.guard.admit(scope)
        if isinstance(admission, HttpReply):
            await admission.send(send)
            return
        route = self.mcp_routes.get((scope["method"], scope["path"]))
        # The server cancels requests only when its graceful-shutdown period has run out: a request
        # cancelled before its answer has started gets a 503 instead.
        if route is None:
            try:
                await self._forward(scope, receive, send, admission)
            except asyncio.CancelledError:
                if scope["state"].get("response_started"):
                    raise
                await SHUTTING_DOWN.send(send, admission.cors_headers)
            return
        body: bytes | HttpReply | None = None
        hang_up: HangUp | None = None
        try:
            body = await self.guard.read_body(scope, receive, admission.client_id)
            if body is None:
                return
            if isinstance(body, HttpReply):
                reply = body
            else:
                hang_up = HangUp(receive)
                reply = await route(HttpRequest(scope, body, admission.client_id))
        except asyncio.CancelledError:
            if hang_up is not None and hang_up.happened:
                return  # the client went away: its call is cancelled and there is no one to answer
            reply = SHUTTING_DOWN
        finally:
            if hang_up is not None:
                hang_up.stop_watching()
            if isinstance(body, bytes):
                self.guard.release_body(body)
        await reply.send(send, admission.cors_headers)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, admission: Admission) -> None:
        cors = admission.cors_headers
        state = scope.setdefault("state", {})
        state["client_id"] = admission.client_id

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["response_started"] = True
                if cors:
                    message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await super().__call__(scope, receive, guarded_send)
            return
        body = await self.guard.read_body(scope, receive, admission.client_id)
        if body is None:
            return
        if isinstance(body, HttpReply):
            await body.send(send, cors)
            return
        try:
            await super().__call__(scope, _replay(body, receive), guarded_send)
        finally:
            self.guard.release_body(body)


class HangUp:
    """Cancels the task answering a request when its client disconnects before the answer is sent.

    A plain HTTP client that gives up closes its connection; without this its tool call would run on
    to its timeout, holding its share of the service. The server's ``receive`` reports the disconnect
    once the body has been read.
    """

    __slots__ = ("_watcher", "happened")

    def __init__(self, receive: Receive) -> None:
        self.happened = False
        answering = asyncio.current_task()
        self._watcher = asyncio.ensure_future(self._watch(receive, answering))

    async def _watch(self, receive: Receive, answering: asyncio.Task[Any] | None) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.happened = True
        if answering is not None:
            answering.cancel()

    def stop_watching(self) -> None:
        self._watcher.cancel()


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answered_by_service_app() -> None:
    raise AssertionError("ServiceApp answers this route before FastAPI routing")  # pragma: no cover


def _json_response(payload: Any, status: int = 200) -> Response:
    return Response(protocol.dumps(payload), status_code=status, media_type="application/json")


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
