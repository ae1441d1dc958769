"""``GET /sse`` + ``POST /messages``: the 2024-11-05 HTTP+SSE transport (LiteLLM's ``sse``).

The stream's first event is ``endpoint`` with the URL to POST messages to; replies arrive as
``message`` events, and a comment line keeps idle proxies from closing the stream. This is the one
stateful transport: a session lives in the replica holding its stream (the chart sets ClientIP
affinity for it). When the client goes away, its session and every call still running in it end.

Bounds: at most ``MCP_SSE_MAX_SESSIONS`` sessions (503) and ``MCP_SSE_MAX_SESSIONS_PER_CLIENT`` per
identity (429); a session takes posts only from the identity that opened it (403); and the replies
waiting to be read are at most ``MCP_SSE_OUTBOX_BYTES``: a reader that falls further behind gets a
last ``error`` event saying so, its stream ends and its pending calls are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from libmcp import protocol
from libmcp.calls import CallInfo
from libmcp.http import HttpReply, HttpRequest, json_reply
from libmcp.protocol import Message, RpcError
from libmcp.server import Server
from libmcp.transports._http import answer_batch, call_info

if TYPE_CHECKING:
    from libmcp.session_bus import Envelope, SessionBus

logger = logging.getLogger("libmcp.sse")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
_CLOSE = b""  # an empty chunk in the outbox ends the stream; real events are never empty
MESSAGE_ACCEPTED = HttpReply(202, b"Accepted", b"text/plain; charset=utf-8")
# Sessions end when their clients go: a refused client may try again soon.
RETRY_AFTER_S = "10"


@dataclass(slots=True)
class SseSession:
    id: str
    client_id: str
    outbox_limit: int
    protocol_version: str = "2024-11-05"
    outbox: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    # Bytes of the events queued or being written: what the reader has not taken yet.
    pending_bytes: int = 0
    calls: dict[Any, asyncio.Task[None]] = field(default_factory=dict)
    # Set when the session is over before its client left (the reader fell behind).
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def fits(self, size: int) -> bool:
        """Whether an event of ``size`` bytes may be queued: within the bound, or into an empty outbox."""
        return self.pending_bytes == 0 or self.pending_bytes + size <= self.outbox_limit

    def queue(self, event: bytes) -> None:
        self.pending_bytes += len(event)
        self.outbox.put_nowait(event)

    def cancel_calls(self) -> None:
        current = asyncio.current_task()
        for task in list(self.calls.values()):
            if task is not current:
                task.cancel()


class SseTransport:
    def __init__(self, server: Server, keepalive_s: float, bus: SessionBus | None = None) -> None:
        self.server = server
        # With MCP_SESSION_BUS_URL: posts for sessions held by another replica are relayed there.
        self.bus = bus
        if bus is not None:
            bus.serve("sse", self.handle_relayed)
        self.keepalive_s = keepalive_s
        self.settings = server.server_settings
        self.sessions: dict[str, SseSession] = {}
        self.per_client: dict[str, int] = {}
        server.metrics.sse_sessions_max.set(self.settings.sse_max_sessions)

    async def handle_stream(self, request: Request) -> Response:
        session = SseSession(
            id=uuid.uuid4().hex,
            client_id=request.scope.get("state", {}).get("client_id", ""),
            outbox_limit=self.settings.sse_outbox_bytes,
        )
        endpoint = f"{request.scope.get('root_path', '')}/messages?session_id={session.id}"
        return _EventStream(self, session, endpoint)

    async def handle_message(self, request: HttpRequest, body: Any) -> HttpReply:
        """Accept a decoded body that passed the app's intake for its session; answers go on the stream."""
        session_id = request.query("session_id")
        if not session_id:
            return json_reply({"error": "session_id query parameter is required"}, 400)
        session = self.sessions.get(session_id)
        if session is None and self.bus is not None:
            return await self._relay(request, session_id)
        return self._post(session, session_id, request, body)

    async def handle_relayed(self, envelope: Envelope) -> HttpReply:
        """A post relayed by another replica to a session held here: the same checks as a local post."""
        headers = [(b"traceparent", envelope.traceparent.encode())] if envelope.traceparent else []
        scope = {"type": "http", "headers": headers, "query_string": b""}
        request = HttpRequest(scope, envelope.body, envelope.client_id)
        try:
            body = protocol.parse_json(envelope.body)
        except RpcError as error:
            return json_reply(protocol.error_response(None, error), 400)
        return self._post(self.sessions.get(envelope.session_id), envelope.session_id, request, body)

    async def _relay(self, request: HttpRequest, session_id: str) -> HttpReply:
        from libmcp.session_bus import Envelope  # only with the bus configured: redis is imported then

        assert self.bus is not None
        envelope = Envelope(
            "sse", session_id, request.client_id, request.body, request.header(b"traceparent")
        )
        relayed = await self.bus.relay(envelope)
        if relayed.outcome == "answered" and relayed.reply is not None:
            return relayed.reply
        if relayed.outcome == "gone":
            return _unknown(session_id)
        if relayed.outcome == "full":
            cap = self.settings.session_bus_queue_messages
            return self._refuse(
                "session_bus_queue",
                request.client_id,
                429,
                f"session {session_id!r} already has {cap} relayed messages waiting for its replica, "
                "the limit (MCP_SESSION_BUS_QUEUE_MESSAGES); wait for its answers, then retry",
            )
        if relayed.outcome == "not_taken":
            return self._refuse(
                "session_bus_ack",
                request.client_id,
                503,
                f"the replica holding session {session_id!r} did not take the message within "
                f"{self.settings.session_bus_ack_timeout_s} s (MCP_SESSION_BUS_ACK_TIMEOUT_S): "
                f"{relayed.detail}",
            )
        return self._refuse(
            "session_bus_down",
            request.client_id,
            503,
            f"session {session_id!r} is held by another replica and the session bus (MCP_SESSION_BUS_URL) "
            f"is unavailable ({relayed.detail}); retry",
        )

    def _post(
        self, session: SseSession | None, session_id: str, request: HttpRequest, body: Any
    ) -> HttpReply:
        if session is None:
            return _unknown(session_id)
        if request.client_id != session.client_id:
            return self._refuse(
                "sse_session_owner",
                request.client_id,
                403,
                f"session {session_id!r} belongs to the client that opened its stream: post with the "
                "same credentials (bearer token) as the GET /sse that opened it",
            )
        if isinstance(body, list):
            if not body:
                refusal = RpcError(protocol.INVALID_REQUEST, "Invalid request: empty batch")
                return json_reply(protocol.error_response(None, refusal), 400)
            self._spawn(session, None, self._answer_batch(session, request, body))
            return MESSAGE_ACCEPTED
        try:
            message = protocol.to_message(body)
        except RpcError as error:
            return json_reply(protocol.error_response(None, error), 400)
        self._accept(session, request, message)
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
        info = call_info(request, "sse", protocol.HANDSHAKE, session.protocol_version, session.id)
        info.notify = lambda notification: self._deliver(session, orjson.dumps(notification))
        self._spawn(session, message.id, self._answer(session, message, info))

    def _spawn(self, session: SseSession, request_id: Any, work: Any) -> None:
        key = request_id if request_id is not None else object()
        task = asyncio.get_running_loop().create_task(work)
        session.calls[key] = task
        task.add_done_callback(lambda _: session.calls.pop(key, None))

    async def _answer(self, session: SseSession, message: Message, info: CallInfo) -> None:
        answer = await self.server.answer(message, info)
        if answer is not None:
            self._deliver(session, answer.body)

    async def _answer_batch(self, session: SseSession, request: HttpRequest, batch: list[Any]) -> None:
        info = call_info(request, "sse", protocol.HANDSHAKE, session.protocol_version, session.id)
        answers = await answer_batch(self.server, batch, info)
        if answers is not None:
            self._deliver(session, answers)

    def _deliver(self, session: SseSession, body: bytes) -> None:
        """Queue a reply as a ``message`` event, or end a session whose reader has fallen behind."""
        if session.ended.is_set():
            return
        event = b"event: message\ndata: " + body + b"\n\n"
        if session.fits(len(event)):
            session.queue(event)
            return
        self._count("sse_outbox", session.client_id, f"session {session.id} closed: its reader fell behind")
        self.forget(session)
        session.cancel_calls()
        session.ended.set()
        while not session.outbox.empty():
            session.outbox.get_nowait()
        reason = (
            f"this session's replies waiting to be read passed {session.outbox_limit} bytes "
            "(MCP_SSE_OUTBOX_BYTES): the stream is closed and the calls still pending in it are "
            "cancelled; read the stream as replies arrive, then reconnect and send them again"
        )
        data = orjson.dumps({"error": reason, "setting": "MCP_SSE_OUTBOX_BYTES"})
        session.outbox.put_nowait(b"event: error\ndata: " + data + b"\n\n")
        session.outbox.put_nowait(_CLOSE)

    def register(self, session: SseSession) -> HttpReply | None:
        """Register a new session, or the refusal when a cap is reached (checked and taken at once)."""
        client = session.client_id
        cap = self.settings.sse_max_sessions
        if len(self.sessions) >= cap:
            return self._refuse(
                "sse_sessions",
                client,
                503,
                f"the service already has {cap} SSE sessions open, its limit (MCP_SSE_MAX_SESSIONS); "
                "retry later",
            )
        per_client = self.settings.sse_max_sessions_per_client
        if self.per_client.get(client, 0) >= per_client:
            return self._refuse(
                "sse_sessions_per_client",
                client,
                429,
                f"this client already has {per_client} SSE sessions open, its limit "
                "(MCP_SSE_MAX_SESSIONS_PER_CLIENT); close one or retry later",
            )
        self.sessions[session.id] = session
        self.per_client[client] = self.per_client.get(client, 0) + 1
        self.server.metrics.sse_sessions.inc()
        return None

    def forget(self, session: SseSession) -> None:
        """Unregister a session (once: its stream ending and its reader falling behind both call this)."""
        if self.sessions.pop(session.id, None) is None:
            return
        remaining = self.per_client[session.client_id] - 1
        if remaining:
            self.per_client[session.client_id] = remaining
        else:
            del self.per_client[session.client_id]
        self.server.metrics.sse_sessions.dec()

    def _refuse(self, reason: str, client: str, status: int, message: str) -> HttpReply:
        """Count and log a refusal, and build its reply."""
        self._count(reason, client, message)
        headers = {"Retry-After": RETRY_AFTER_S} if status in (429, 503) else None
        return json_reply({"error": message}, status, headers)

    def _count(self, reason: str, client: str, detail: str) -> None:
        self.server.metrics.http_rejections.labels(reason).inc()
        fields = {"event": "rejected", "reason": reason, "client": client[:256], "detail": detail}
        logger.warning("request refused", extra={"fields": fields})

    def close_all(self) -> None:
        """End every stream (on shutdown): clients see the stream close and reconnect elsewhere."""
        for session in list(self.sessions.values()):
            session.outbox.put_nowait(_CLOSE)


def _unknown(session_id: str) -> HttpReply:
    return json_reply({"error": f"unknown or closed session {session_id[:100]!r}"}, 404)


class _EventStream(Response):
    """The SSE response of one session; it registers the session while the stream is open."""

    def __init__(self, transport: SseTransport, session: SseSession, endpoint: str) -> None:
        super().__init__(status_code=200)
        self.transport = transport
        self.session = session
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport, session = self.transport, self.session
        refusal = transport.register(session)
        if refusal is not None:
            await refusal.send(send)
            return
        bus = transport.bus
        try:
            if bus is not None:
                # Claimed before the client learns the endpoint: its first post may land anywhere.
                await bus.claim("sse", session.id)
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            await send(
                {
                    "type": "http.response.body",
                    "body": f"event: endpoint\ndata: {self.endpoint}\n\n".encode(),
                    "more_body": True,
                }
            )
            loop = asyncio.get_running_loop()
            writer = loop.create_task(self._write(send))
            watcher = loop.create_task(_wait_for_disconnect(receive))
            ended = loop.create_task(session.ended.wait())
            done, _ = await asyncio.wait({writer, watcher, ended}, return_when=asyncio.FIRST_COMPLETED)
            if ended in done and writer not in done and watcher not in done:
                # The reader fell behind: its last event waits behind what it has not read yet. It has
                # as long as any stalled reader (MCP_SEND_TIMEOUT_S) to take it.
                await asyncio.wait(
                    {writer, watcher},
                    timeout=self.transport.settings.send_timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            for task in (writer, watcher, ended):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, OSError):
                        await task
            if writer.done() and not writer.cancelled() and writer.exception() is None:
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            transport.forget(session)
            session.cancel_calls()
            if bus is not None:
                await bus.release("sse", session.id)

    async def _write(self, send: Send) -> None:
        session, keepalive = self.session, self.transport.keepalive_s
        outbox = session.outbox
        while True:
            try:
                chunk = await asyncio.wait_for(outbox.get(), timeout=keepalive)
            except TimeoutError:
                await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
                continue
            if not chunk:
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not session.ended.is_set():
                session.pending_bytes -= len(chunk)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
