"""``GET /sse`` + ``POST /messages``: the 2024-11-05 HTTP+SSE transport (LiteLLM's ``sse``).

The stream's first event is ``endpoint`` with the URL to POST messages to; replies arrive as
``message`` events, and a comment line keeps idle proxies from closing the stream. This is the one
stateful transport: a session lives in the replica holding its stream (the chart sets ClientIP
affinity for it). When the client goes away, its session and every call still running in it end.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from libmcp import protocol
from libmcp.http import HttpReply, HttpRequest, json_reply
from libmcp.protocol import Message, RpcError
from libmcp.security import RateLimiter
from libmcp.server import Server
from libmcp.transports._http import answer_all, call_info, decode_batch, rate_limit

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
_CLOSE = b""  # an empty chunk in the outbox ends the stream; real events are never empty
MESSAGE_ACCEPTED = HttpReply(202, b"Accepted", b"text/plain; charset=utf-8")


@dataclass(slots=True)
class SseSession:
    id: str
    client_id: str
    protocol_version: str = "2024-11-05"
    outbox: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    calls: dict[Any, asyncio.Task[None]] = field(default_factory=dict)

    def push(self, payload: Any) -> None:
        self.outbox.put_nowait(b"event: message\ndata: " + protocol.dumps(payload) + b"\n\n")

    def cancel_calls(self) -> None:
        for task in self.calls.values():
            task.cancel()


class SseTransport:
    def __init__(self, server: Server, limiter: RateLimiter, keepalive_s: float) -> None:
        self.server = server
        self.limiter = limiter
        self.keepalive_s = keepalive_s
        self.sessions: dict[str, SseSession] = {}

    async def handle_stream(self, request: Request) -> Response:
        session = SseSession(
            id=uuid.uuid4().hex, client_id=request.scope.get("state", {}).get("client_id", "")
        )
        endpoint = f"{request.scope.get('root_path', '')}/messages?session_id={session.id}"
        return _EventStream(self, session, endpoint)

    async def handle_message(self, request: HttpRequest) -> HttpReply:
        session_id = request.query("session_id")
        if not session_id:
            return json_reply({"error": "session_id query parameter is required"}, 400)
        session = self.sessions.get(session_id)
        if session is None:
            return json_reply({"error": f"unknown or closed session {session_id!r}"}, 404)
        try:
            body = protocol.parse_json(request.body)
            if isinstance(body, list):
                if not body:
                    raise RpcError(protocol.INVALID_REQUEST, "Invalid request: empty batch")
                messages = decode_batch(body)
            else:
                messages = [protocol.to_message(body)]
        except RpcError as error:
            return json_reply(protocol.error_response(None, error), 400)
        limited = rate_limit(self.server, self.limiter, messages, session.client_id)
        if limited is not None:
            return limited
        if isinstance(body, list):
            self._spawn(session, None, self._answer_batch(session, request, body))
        else:
            self._accept(session, request, messages[0])
        return MESSAGE_ACCEPTED

    def _accept(self, session: SseSession, request: HttpRequest, message: Message) -> None:
        if message.method == "notifications/cancelled":
            task = session.calls.get(message.params.get("requestId"))
            if task is not None:
                task.cancel()
            return
        if not message.is_request:
            return
        if message.method == "initialize":
            session.protocol_version = protocol.negotiate_handshake_version(
                message.params.get("protocolVersion")
            )
        info = call_info(request, "sse", "handshake", session.protocol_version, session.id)
        info.client_id = session.client_id
        self._spawn(session, message.id, self._answer(session, message, info))

    def _spawn(self, session: SseSession, request_id: Any, work: Any) -> None:
        key = request_id if request_id is not None else object()
        task = asyncio.get_running_loop().create_task(work)
        session.calls[key] = task
        task.add_done_callback(lambda _: session.calls.pop(key, None))

    async def _answer(self, session: SseSession, message: Message, info: Any) -> None:
        response = await self.server.handle(message, info)
        if response is not None:
            session.push(response)

    async def _answer_batch(self, session: SseSession, request: HttpRequest, batch: list[Any]) -> None:
        info = call_info(request, "sse", "handshake", session.protocol_version, session.id)
        info.client_id = session.client_id
        responses = await answer_all(self.server, batch, info)
        if responses:
            session.push(responses)

    def close_all(self) -> None:
        """End every stream (on shutdown): clients see the stream close and reconnect elsewhere."""
        for session in list(self.sessions.values()):
            session.outbox.put_nowait(_CLOSE)


class _EventStream(Response):
    """The SSE response of one session; it registers the session while the stream is open."""

    def __init__(self, transport: SseTransport, session: SseSession, endpoint: str) -> None:
        super().__init__(status_code=200)
        self.transport = transport
        self.session = session
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport, session = self.transport, self.session
        transport.sessions[session.id] = session
        transport.server.metrics.sse_sessions.inc()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            await send(
                {
                    "type": "http.response.body",
                    "body": f"event: endpoint\ndata: {self.endpoint}\n\n".encode(),
                    "more_body": True,
                }
            )
            writer = asyncio.get_running_loop().create_task(self._write(send))
            watcher = asyncio.get_running_loop().create_task(_wait_for_disconnect(receive))
            done, pending = await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
            if writer in done and writer.exception() is None:
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            transport.sessions.pop(session.id, None)
            transport.server.metrics.sse_sessions.dec()
            session.cancel_calls()

    async def _write(self, send: Send) -> None:
        outbox, keepalive = self.session.outbox, self.transport.keepalive_s
        while True:
            try:
                chunk = await asyncio.wait_for(outbox.get(), timeout=keepalive)
            except TimeoutError:
                chunk = b": ping\n\n"
            if not chunk:
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
