"""Assemble one service's HTTP app: every transport, health, metrics and discovery on one port."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from libmcp import protocol
from libmcp.endpoints import ENDPOINTS, TRANSPORTS
from libmcp.http import Headers, HttpReply, HttpRequest, json_reply
from libmcp.observability import METRICS_CONTENT_TYPE
from libmcp.openapi import document
from libmcp.security import Admission, RateLimiter, RequestGuard
from libmcp.server import Server
from libmcp.transports._http import Admitted, Intake
from libmcp.transports.rpc import RpcTransport
from libmcp.transports.sse import SseTransport
from libmcp.transports.streamable_http import StreamableHttpTransport

McpHandler = Callable[[HttpRequest, Any], Awaitable[HttpReply]]
PageHandler = Callable[[Request], Awaitable[Response]]
SHUTTING_DOWN = json_reply({"error": "the service is shutting down; retry"}, 503, {"Retry-After": "1"})


def create_app(server: Server) -> ServiceApp:
    """The ASGI app of one service, routed from the endpoint table (``libmcp/endpoints.py``).

    ``app.state.sse`` lets the runner end streams on shutdown.
    """
    settings = server.server_settings
    bus = None
    if settings.session_bus_url:
        # Imported only when configured: without the bus nothing imports redis.
        from libmcp.session_bus import SessionBus

        bus = SessionBus(settings)
        server.optional_checks["session_bus"] = bus.check
    sse = SseTransport(server, settings.sse_keepalive_s, bus)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await server.start()
        if bus is not None:
            await bus.start()
        # Everything alive now lives as long as the process: keep it out of the collector's full passes,
        # which would otherwise rescan it and stall every call in flight (a p99 cost).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            sse.close_all()
            if bus is not None:
                await bus.stop()
            await server.stop()

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

    mcp_handlers: dict[str, McpHandler] = {
        "mcp_post": StreamableHttpTransport(server).handle_post,
        "rpc_post": RpcTransport(server).handle_post,
        "messages_post": sse.handle_message,
    }
    page_handlers: dict[str, PageHandler] = {
        "mcp_get": not_in_stateless_mode,
        "mcp_delete": not_in_stateless_mode,
        "sse_get": sse.handle_stream,
        "health": health,
        "metrics": metrics,
        "discovery": discovery,
    }
    pages = FastAPI(
        title=f"mcp-sse {server.service.name}",
        version=server.service.version,
        description=server.service.instructions or "",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # libmcp makes the spans (one per tool call, MCP semantic conventions) and the metrics itself.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    mcp_routes: dict[tuple[str, str], McpHandler] = {}
    for endpoint in ENDPOINTS:
        if endpoint.mcp:
            mcp_routes[(endpoint.method, endpoint.path)] = mcp_handlers[endpoint.name]
        else:
            pages.add_api_route(
                endpoint.path,
                page_handlers[endpoint.name],
                methods=[endpoint.method],
                summary=endpoint.summary,
                operation_id=endpoint.name,
                include_in_schema=endpoint.documented,
            )
    pages.state.server = server
    pages.state.sse = sse
    app = ServiceApp(
        guard=RequestGuard(settings, server.metrics),
        # Batch size and rate limit: one check on every MCP POST, whichever transport it is for.
        intake=Intake(server, RateLimiter(settings)),
        mcp_routes=mcp_routes,
        pages=pages,
        auth=bool(settings.auth_tokens),
    )
    pages.openapi = app.openapi  # type: ignore[method-assign]  # FastAPI serves /openapi.json from it
    return app


class ServiceApp:
    """The ASGI app: every request passes the guards, then MCP traffic goes through libmcp's pipeline
    and everything else (health, metrics, discovery, the SSE stream, the 405s, OpenAPI) to FastAPI.

    The pipeline of an MCP ``POST``, in order: the guard (Origin, bearer token, duplicate headers; the
    caller's identity), the body within ``MCP_MAX_BODY_BYTES`` and the bytes-in-flight budget, the
    intake (JSON, batch size, rate limit), then the transport, which frames the messages for
    ``Server.answer`` and its answers for the wire. No Starlette request or response objects on this
    path: they cost more than the whole JSON-RPC dispatch.
    """

    def __init__(
        self,
        *,
        guard: RequestGuard,
        intake: Intake,
        mcp_routes: Mapping[tuple[str, str], McpHandler],
        pages: FastAPI,
        auth: bool,
    ) -> None:
        self.guard = guard
        self.intake = intake
        self.mcp_routes = dict(mcp_routes)
        self.pages = pages
        self.state = pages.state
        self._auth = auth
        self._description: dict[str, Any] = {}

    def lifespan(self) -> AbstractAsyncContextManager[Any]:
        """The service's start-up and shutdown, for driving the app without a server (tests, benches)."""
        return self.pages.router.lifespan_context(self.pages)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document: FastAPI's description of the pages plus the MCP endpoints of the table,
        completed with every answer each can give (``libmcp/openapi.py``)."""
        if not self._description:
            pages = self.pages
            generated = get_openapi(
                title=pages.title, version=pages.version, description=pages.description, routes=pages.routes
            )
            paths = generated.setdefault("paths", {})
            for endpoint in ENDPOINTS:
                if endpoint.mcp and endpoint.documented:
                    paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = {
                        "summary": endpoint.summary,
                        "operationId": endpoint.name,
                    }
            self._description.update(document(generated, auth=self._auth))
        return self._description

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.pages(scope, receive, send)  # the lifespan
            return
        admission = self.guard.admit(scope)
        if isinstance(admission, HttpReply):
            await admission.send(send)
            return
        handler = self.mcp_routes.get((scope["method"], scope["path"]))
        # The server cancels requests only when its graceful-shutdown period has run out: a request
        # cancelled before its answer has started gets a 503 instead.
        if handler is None:
            try:
                await self._forward(scope, receive, send, admission)
            except asyncio.CancelledError:
                if scope["state"].get("response_started"):
                    raise
                await SHUTTING_DOWN.send(send, admission.cors_headers)
            return
        reply = await self._answer_mcp(scope, receive, handler, admission)
        if reply is not None:
            await reply.send(send, admission.cors_headers)

    async def _answer_mcp(
        self, scope: Scope, receive: Receive, handler: McpHandler, admission: Admission
    ) -> HttpReply | None:
        """The pipeline after the guard; ``None`` when there is no one left to answer."""
        body: bytes | HttpReply | None = None
        hang_up: HangUp | None = None
        try:
            body = await self.guard.read_body(scope, receive, admission.client_id)
            if body is None:
                return None
            if isinstance(body, HttpReply):
                return body
            request = HttpRequest(scope, body, admission.client_id)
            admitted = self.intake.admit(request)
            if not isinstance(admitted, Admitted):
                return admitted
            hang_up = HangUp(receive)
            return await handler(request, admitted.body)
        except asyncio.CancelledError:
            if hang_up is not None and hang_up.happened:
                return None  # the client went away: its call is cancelled and there is no one to answer
            return SHUTTING_DOWN
        finally:
            if hang_up is not None:
                hang_up.stop_watching()
            if isinstance(body, bytes):
                self.guard.release_body(body)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, admission: Admission) -> None:
        state = scope.setdefault("state", {})
        state["client_id"] = admission.client_id
        guarded_send = _with_headers(send, admission.cors_headers, state)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.pages(scope, receive, guarded_send)
            return
        body = await self.guard.read_body(scope, receive, admission.client_id)
        if body is None:
            return
        if isinstance(body, HttpReply):
            await body.send(send, admission.cors_headers)
            return
        try:
            await self.pages(scope, _replay(body, receive), guarded_send)
        finally:
            self.guard.release_body(body)


def _with_headers(send: Send, extra: Headers, state: dict[str, Any] | None = None) -> Send:
    """``send`` adding ``extra`` headers to the response start, and noting in ``state`` that it began."""

    async def guarded_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            if state is not None:
                state["response_started"] = True
            if extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return guarded_send


class HangUp:
    """Cancels the task answering a request when its client disconnects before the answer is sent.

    A plain HTTP client that gives up closes its connection; without this its tool call would run on
    to its timeout, holding its share of the service. The server's ``receive`` reports the disconnect
    once the body has been read; a call that lasts past ``WATCH_AFTER_S`` starts listening for it.
    """

    # Most calls answer sooner than this: they never start a watching task, only arm and cancel a timer.
    WATCH_AFTER_S = 0.05

    __slots__ = ("_answering", "_receive", "_timer", "_watcher", "happened")

    def __init__(self, receive: Receive) -> None:
        self.happened = False
        self._receive = receive
        self._answering = asyncio.current_task()
        self._watcher: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(self.WATCH_AFTER_S, self._start_watching)

    def _start_watching(self) -> None:
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.happened = True
        if self._answering is not None:
            self._answering.cancel()

    def stop_watching(self) -> None:
        self._timer.cancel()
        if self._watcher is not None:
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
        "transports": dict(TRANSPORTS),
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
