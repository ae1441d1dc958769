"""The HTTP edge: bounds every connection meets before its request reaches uvicorn's parser or auth.

uvicorn's httptools protocol reads a request head of any size for as long as the client likes, keeps a
connection with an unfinished head or body open for ever, and accepts every connection the process
has descriptors for. :class:`EdgeProtocol` is what ``uvicorn.Config(http=...)`` gets instead: it
creates the real protocol (the same keywords uvicorn passes), forwards every ``asyncio.Protocol`` call
to it, and watches the bytes on their way with its own ``httptools.HttpRequestParser`` (no header or
URL callbacks, so it buffers nothing). Over a limit it answers by itself with a complete small
HTTP/1.1 response with ``connection: close`` and closes, before the bytes reach the real parser:

* the request line and headers larger than ``MCP_MAX_HEADER_BYTES``, or more than ``MCP_MAX_HEADERS``
  header lines: 431;
* a head not whole within ``MCP_HEADER_TIMEOUT_S`` (from the connection's start, or from the first
  byte of a later request), or a body not whole within ``MCP_BODY_TIMEOUT_S`` of its head: 408;
* more than ``MCP_MAX_CONNECTIONS`` open connections, or ``MCP_MAX_CONNECTIONS_PER_CLIENT`` from one
  peer address: 503 with ``Retry-After`` at once, so the descriptor is freed;
* a client that does not read what it is sent: once the transport has asked to pause writing, it has
  ``MCP_SEND_TIMEOUT_S`` to take enough of it to resume; past that the connection is aborted, which
  drops its unsent bytes (a reader that never reads holds neither memory nor a descriptor for long).

Idle keep-alive connections are uvicorn's own ``timeout_keep_alive`` (``MCP_KEEPALIVE_TIMEOUT_S``). One
timer per server sweeps the open connections for the timeouts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

import httptools
import orjson

from libmcp.config import ServerSettings, SettingsError

logger = logging.getLogger("libmcp.http_edge")

END_OF_HEAD = b"\r\n\r\n"
# Bare CRLFs between requests are skipped by the parser (RFC 9112 section 2.2 asks servers to ignore
# at least one); up to this many bytes of them do not start the next head's clock.
STRAY_CRLF_BYTES = 4
# Descriptors kept back from MCP_MAX_CONNECTIONS when RLIMIT_NOFILE is low: listening sockets, the
# metrics port, database pools, backend HTTP clients, log files, the event loop's own.
FD_RESERVE = 64
# After a refusal, how long and how much more input the close waits for (see EdgeProtocol._refuse).
LINGER_S = 1.0
LINGER_BYTES = 65_536
# Refusals logged per second at most (every one is counted in mcp_http_rejections).
MAX_LOGGED_PER_S = 20

# _LINGER: refused, the answer written, the close waiting (see EdgeProtocol._refuse).
_IDLE, _HEAD, _BODY, _LINGER, _CLOSED = range(5)
_NEVER = math.inf
_UNKNOWN, _UNMEASURED = -1, -2  # where a message ends in the current read, when not an offset


class RejectionCounter(Protocol):
    """The part of ``Metrics.http_rejections`` the edge uses: ``labels(reason).inc()``."""

    def labels(self, *reason: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """The edge's limits, from :class:`ServerSettings` (``max_connections`` already capped to the fds)."""

    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    max_connections_per_client: int
    send_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: ServerSettings, *, max_connections: int | None = None) -> EdgeLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=max_connections or settings.max_connections,
            max_connections_per_client=settings.max_connections_per_client,
            send_timeout_s=settings.send_timeout_s,
        )


def trusted_proxies(settings: ServerSettings) -> list[str]:
    """``MCP_TRUSTED_PROXIES`` as uvicorn's ``forwarded_allow_ips``; a bad entry is a SettingsError."""
    for entry in settings.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                f"invalid settings: MCP_TRUSTED_PROXIES={entry!r}: not an IP address or CIDR "
                "(for example 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return list(settings.trusted_proxies)


def connection_cap(max_connections: int) -> int:
    """``max_connections``, or fewer when RLIMIT_NOFILE's soft limit cannot hold them plus a reserve.

    A process out of descriptors cannot accept anything, ``/health`` included; refusing with a 503
    below that keeps it answering.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= max_connections + FD_RESERVE:
        return max_connections
    capped = max(1, soft - FD_RESERVE)
    logger.warning(
        "MCP_MAX_CONNECTIONS=%d does not fit the open-file limit (RLIMIT_NOFILE soft limit %d, %d kept "
        "for other files): at most %d connections are served; raise the limit (ulimit -n) to serve more",
        max_connections,
        soft,
        FD_RESERVE,
        capped,
    )
    return capped


def _answer(status: str, error: str, *extra: bytes) -> bytes:
    body = orjson.dumps({"error": error})
    head = [
        b"HTTP/1.1 " + status.encode(),
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        *extra,
        b"connection: close",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class HttpEdge:
    """The edge state one server shares: open connections per peer, the sweep timer, the answers."""

    def __init__(self, limits: EdgeLimits, rejections: RejectionCounter) -> None:
        self.limits = limits
        self.rejections = rejections
        self.open: set[EdgeProtocol] = set()
        self.per_client: dict[str, int] = {}
        # Connections whose transport asked to pause writing, with when they must have resumed.
        self.write_paused: dict[EdgeProtocol, float] = {}
        self.sweep_every_s = min(
            1.0, max(0.05, min(limits.header_timeout_s, limits.body_timeout_s, limits.send_timeout_s) / 4)
        )
        self._timer: asyncio.TimerHandle | None = None
        # Deadlines are set from this clock, read at each sweep and each new connection rather than on
        # every request; it lags by at most one sweep, so deadlines carry one sweep of slack (never early).
        self.clock = time.monotonic()
        self._log_second = 0
        self._logged = self._unlogged = 0
        retry = b"retry-after: 1"
        self.answers = {
            "header_size": _answer(
                "431 Request Header Fields Too Large",
                f"request line and headers exceed {limits.max_header_bytes} bytes (MCP_MAX_HEADER_BYTES)",
            ),
            "header_count": _answer(
                "431 Request Header Fields Too Large",
                f"more than {limits.max_headers} header lines (MCP_MAX_HEADERS)",
            ),
            "header_timeout": _answer(
                "408 Request Timeout",
                f"request head not received within {limits.header_timeout_s:g} s (MCP_HEADER_TIMEOUT_S)",
            ),
            "body_timeout": _answer(
                "408 Request Timeout",
                f"request body not received within {limits.body_timeout_s:g} s (MCP_BODY_TIMEOUT_S)",
            ),
            "connections": _answer(
                "503 Service Unavailable",
                f"too many open connections ({limits.max_connections}, MCP_MAX_CONNECTIONS); retry",
                retry,
            ),
            "client_connections": _answer(
                "503 Service Unavailable",
                f"too many open connections from this address ({limits.max_connections_per_client}, "
                "MCP_MAX_CONNECTIONS_PER_CLIENT); retry",
                retry,
            ),
            "malformed": _answer("400 Bad Request", "malformed HTTP request"),
        }

    def protocol(self, inner: Callable[..., asyncio.Protocol]) -> type[EdgeProtocol]:
        """The class for ``uvicorn.Config(http=...)``: edge limits in front of ``inner``."""
        return type("EdgeProtocol", (EdgeProtocol,), {"__slots__": (), "edge": self, "inner_class": inner})

    def deadline(self, timeout_s: float) -> float:
        return self.clock + timeout_s + self.sweep_every_s

    def admit(self, connection: EdgeProtocol) -> str | None:
        """Count a new connection in, or return the reason it is refused."""
        self.clock = time.monotonic()
        if len(self.open) >= self.limits.max_connections:
            return "connections"
        client = connection.client
        count = self.per_client.get(client, 0)
        if count >= self.limits.max_connections_per_client:
            return "client_connections"
        self.open.add(connection)
        self.per_client[client] = count + 1
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.sweep_every_s, self._sweep)
        return None

    def release(self, connection: EdgeProtocol) -> None:
        if connection not in self.open:
            return
        self.open.discard(connection)
        self.write_paused.pop(connection, None)
        client = connection.client
        count = self.per_client.get(client, 1) - 1
        if count > 0:
            self.per_client[client] = count
        else:
            self.per_client.pop(client, None)
        if not self.open and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def refused(self, reason: str, client: str) -> None:
        """Count and log one refusal: the reason and the peer, never what it sent.

        A flood must not become a flood of log lines: past ``MAX_LOGGED_PER_S`` lines in a second the
        rest are only counted, and the next line logged says how many were left out.
        """
        self.rejections.labels(reason).inc()
        second = int(time.monotonic())
        if second != self._log_second:
            self._log_second, self._logged = second, 0
        self._logged += 1
        if self._logged > MAX_LOGGED_PER_S:
            self._unlogged += 1
            return
        fields: dict[str, Any] = {"event": "rejected", "reason": reason, "client": client}
        if self._unlogged:
            fields["not_logged_before"] = self._unlogged
            self._unlogged = 0
        logger.warning("connection refused", extra={"fields": fields})

    def _sweep(self) -> None:
        self.clock = now = time.monotonic()
        for connection in [c for c in self.open if c.deadline <= now]:
            connection.expire(now)
        for connection in [c for c, due in self.write_paused.items() if due <= now]:
            connection.abandon_send()
        self._timer = (
            asyncio.get_running_loop().call_later(self.sweep_every_s, self._sweep) if self.open else None
        )


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a connection that has just been refused."""


class EdgeProtocol(asyncio.Protocol):
    """One connection: the edge's checks on its bytes, the real protocol (``inner``) behind them.

    The head's size is measured on the bytes themselves: from where its request begins to its blank
    line. Where a message begins inside a chunk is known from the previous one's head and body
    lengths, except after a chunked body: that chunk's part of the next head is then not counted, so
    a head can overshoot the limit by at most one read (the bound on memory holds all the same).
    """

    edge: ClassVar[HttpEdge]
    inner_class: ClassVar[Callable[..., asyncio.Protocol]]

    __slots__ = (
        "_body_bytes",
        "_carry",
        "_completed",
        "_data",
        "_head_bytes",
        "_head_lines",
        "_head_start",
        "_inner_kwargs",
        "_pos",
        "_stray",
        "client",
        "deadline",
        "inner",
        "parser",
        "phase",
        "transport",
    )

    def __init__(self, **inner_kwargs: Any) -> None:
        # uvicorn's keywords (config, server_state, app_state, _loop), passed on to the real protocol.
        self._inner_kwargs = inner_kwargs
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.client = "unknown"
        self.phase = _CLOSED
        self.deadline = _NEVER
        self._data = b""
        self._pos = 0
        self._body_bytes = 0
        self._head_start = 0
        self._head_bytes = 0
        self._head_lines = 0
        self._carry = b""
        self._stray = 0
        self._completed = False

    # asyncio.Protocol, forwarded to the real protocol once the edge has looked.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.client = str(peer[0])
        refusal = self.edge.admit(self)
        if refusal is not None:
            self.edge.refused(refusal, self.client)
            transport.write(self.edge.answers[refusal])
            transport.close()
            return
        self.parser = httptools.HttpRequestParser(self)
        # The same leniency uvicorn sets on its parser, so both read the same requests.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.phase = _IDLE
        self.deadline = self.edge.deadline(self.edge.limits.header_timeout_s)
        self.inner = self.inner_class(**self._inner_kwargs)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.phase >= _LINGER:
            if self.phase == _LINGER:
                self._linger(data)
            return
        self._data = data
        self._pos = 0
        self._head_start = 0
        self._completed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # uvicorn's parser skips the same bytes and reads on (no WebSocket is served)
        except httptools.HttpParserError:
            if self.phase >= _LINGER:
                return  # refused in a callback
            self._malformed(data)
            return
        finally:
            self._data = b""
        if self.phase == _HEAD and self._unfinished_head_too_large(data):
            return
        if self.phase == _IDLE and not self._completed:
            self._stray += len(data)
            if self._stray > STRAY_CRLF_BYTES and self.deadline == _NEVER:
                self.deadline = self.edge.deadline(self.edge.limits.header_timeout_s)
        assert self.inner is not None
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.inner is None or self.phase >= _LINGER:
            return None  # the transport closes
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = _CLOSED
        self.edge.release(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.edge.write_paused[self] = self.edge.deadline(self.edge.limits.send_timeout_s)
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.edge.write_paused.pop(self, None)
        if self.inner is not None:
            self.inner.resume_writing()

    # httptools callbacks, on the edge's own parser.

    def on_message_begin(self) -> None:
        pos = self._pos
        if pos == _UNMEASURED:  # a message follows one whose head was let through unmeasured
            found = self._data.find(END_OF_HEAD, self._head_start)
            pos = found + 4 + self._body_bytes if found >= 0 else _UNKNOWN
        self.phase = _HEAD
        self._head_start = pos if pos >= 0 else len(self._data)
        self._head_bytes = self._head_lines = self._stray = 0
        self._carry = b""
        if self.deadline == _NEVER:
            self.deadline = self.edge.deadline(self.edge.limits.header_timeout_s)

    def on_headers_complete(self) -> None:
        data, start, limits = self._data, self._head_start, self.edge.limits
        self.phase = _BODY
        self.deadline = self.edge.deadline(limits.body_timeout_s)
        unread = len(data) - start
        if (
            not self._carry
            and unread <= limits.max_header_bytes
            # llhttp takes no header line shorter than "a:\r\n": this many bytes cannot hold too many.
            and unread // 4 <= limits.max_headers
        ):
            # Within the limits however it splits: where the head ends is found only if a message
            # follows in this read (most reads hold one request, and this is every request's path).
            self._pos = _UNMEASURED
            self._body_bytes = 0
            return
        end = -1
        if self._carry:  # the head began in an earlier read: its blank line may straddle the two
            found = (self._carry + data[:3]).find(END_OF_HEAD)
            if found >= 0:
                end = found + 4 - len(self._carry)
        if end < 0:
            found = data.find(END_OF_HEAD, start)
            end = found + 4 if found >= 0 else -1
        if end >= 0:
            # One line feed ends the request line, one each header, one the blank line.
            if self._head_lines + data.count(b"\n", start, end) - 2 > limits.max_headers:
                raise self._refuse("header_count")
            if self._head_bytes + end - start > limits.max_header_bytes:
                raise self._refuse("header_size")
        self._pos = end if end >= 0 else _UNKNOWN
        self._carry = b""

    def on_body(self, body: bytes) -> None:
        if self._pos >= 0:
            self._pos += len(body)
        elif self._pos == _UNMEASURED:
            self._body_bytes += len(body)

    def on_chunk_header(self) -> None:
        self._pos = _UNKNOWN  # chunk sizes and extensions are not counted

    def on_message_complete(self) -> None:
        self.phase = _IDLE
        self.deadline = _NEVER
        self._completed = True

    # The edge's own decisions.

    def expire(self, now: float) -> None:
        """The sweep found this connection past its deadline: 408, unless the server stopped reading."""
        assert self.transport is not None
        if self.phase == _LINGER:
            self._close()
            return
        reason = "body_timeout" if self.phase == _BODY else "header_timeout"
        if not self.transport.is_reading():
            # uvicorn paused reading (a pipelined request waits, or the app has not read the body):
            # the client cannot be late while it is not read.
            limits = self.edge.limits
            self.deadline = now + (limits.body_timeout_s if self.phase == _BODY else limits.header_timeout_s)
            return
        self._refuse(reason)

    def abandon_send(self) -> None:
        """The client has not read its answer within ``MCP_SEND_TIMEOUT_S``: abort, dropping what is unsent.

        Nothing can be said to a client that does not read; the abort frees the buffered bytes and the
        descriptor at once (a close would wait for the buffer to drain, which is the problem).
        """
        assert self.transport is not None
        self.edge.write_paused.pop(self, None)
        self.edge.refused("send_timeout", self.client)
        self.phase, self.deadline = _CLOSED, _NEVER
        self.transport.abort()

    def _unfinished_head_too_large(self, data: bytes) -> bool:
        start = self._head_start
        self._head_bytes += len(data) - start
        self._head_lines += data.count(b"\n", start)
        self._carry = (self._carry + data[-3:])[-3:]
        limits = self.edge.limits
        # The request line's line feed is counted too.
        if self._head_lines - 1 > limits.max_headers:
            self._refuse("header_count")
            return True
        if self._head_bytes > limits.max_header_bytes:
            self._refuse("header_size")
            return True
        return False

    def _malformed(self, data: bytes) -> None:
        # uvicorn's parser sees the same error and answers 400 itself; the edge only makes sure.
        assert self.inner is not None and self.transport is not None
        self.phase = _CLOSED
        self.inner.data_received(data)
        if not self.transport.is_closing():
            self._refuse("malformed")
            self._close()

    def _refuse(self, reason: str) -> _Refused:
        """Answer ``reason`` and close; the edge reads no request of this connection again.

        The close waits a little (``LINGER_S``, at most ``LINGER_BYTES`` more read and dropped) or
        until the client closes: closing on bytes not yet read makes the kernel send a reset, and a
        reset can destroy the answer before the client reads it.
        """
        assert self.transport is not None
        self.edge.refused(reason, self.client)
        if self.transport.is_closing():
            self.phase, self.deadline = _CLOSED, _NEVER
        else:
            self.transport.write(self.edge.answers[reason])
            self.phase, self.deadline = _LINGER, self.edge.deadline(LINGER_S)
            self._stray = 0
        return _Refused(reason)

    def _linger(self, data: bytes) -> None:
        self._stray += len(data)
        if self._stray > LINGER_BYTES:
            self._close()

    def _close(self) -> None:
        assert self.transport is not None
        self.phase, self.deadline = _CLOSED, _NEVER
        self.transport.close()
