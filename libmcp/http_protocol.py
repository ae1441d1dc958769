"""uvicorn's httptools protocol, with each answer sent in one system call and concurrent answers together.

uvicorn writes the status line and headers as soon as the app sends ``http.response.start``, and the
body with the next message; uvloop sends each write at once, so every answer took two ``write`` calls
and reached the client as two TCP segments. Here:

* the head of a response whose length is known is held until its body is written, and both leave in
  one call (streamed responses such as SSE, and ``100 Continue``, are written at once, as before);
* while other requests are being answered, a finished answer waits for the end of the event-loop step
  and leaves with the others of that step. Under load the clients then get their answers in bursts and
  send the next requests together, so the server reads them in one pass instead of being woken for
  each: measured on 2 cores at concurrency 16, about 15% more calls per second and half the p99 (see
  docs/PERFORMANCE.md). A lone request is answered at once, as without this.

On shutdown uvicorn closes every idle keep-alive connection at once, so a request already on its way
(a pooled client behind a Service, or a proxy, that reused the connection) met a closed socket and
failed without an answer: about 1 call in 2,500 during a rolling restart under keep-alive load
(tests/deploy/test_kube_play.py). Here an idle connection stays open for ``DRAIN_IDLE_S``: a request
that arrives is answered with ``Connection: close``, and one that stays idle is closed then.

Both lean on uvicorn's protocol internals (the attributes in ``UVICORN_INTERNALS``, and the bytes it
writes), which no release promises to keep. So uvicorn is pinned to the tested range in pyproject.toml,
tests/libmcp/test_http_protocol.py fails when an internal is gone or the version leaves that range, and
:func:`http_protocol` falls back to uvicorn's stock protocol (correct, one write more per answer, no
drain) when an internal is missing, so an unexpected upgrade costs speed, not correctness.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A response body larger than this is not kept back to the end of the step.
MAX_DEFERRED_BYTES = 256 * 1024
# Seconds an idle keep-alive connection stays open after SIGTERM for a request already on its way.
DRAIN_IDLE_S = 1.0


# What the subclass below reads or overrides on uvicorn's HttpToolsProtocol.
UVICORN_INTERNALS = (
    "loop",
    "tasks",
    "cycle",
    "connection_made",
    "on_headers_complete",
    "on_response_complete",
    "shutdown",
    "_unset_keepalive_if_required",
    "timeout_keep_alive_task",
    "timeout_keep_alive_handler",
)


def missing_internals(protocol: type[HttpToolsProtocol] = HttpToolsProtocol) -> list[str]:
    """The internals the coalescing protocol needs that ``protocol`` (a class, or its instances) lacks."""
    instance_attributes = {"loop", "tasks", "cycle", "timeout_keep_alive_task"}  # set in __init__
    source = protocol.__init__.__code__.co_names
    return [
        name
        for name in UVICORN_INTERNALS
        if not (hasattr(protocol, name) or (name in instance_attributes and name in source))
    ]


def http_protocol() -> type[HttpToolsProtocol]:
    """The protocol class to serve with: the coalescing one, or uvicorn's own when an internal is gone."""
    if missing_internals():
        return HttpToolsProtocol
    return CoalescingHttpToolsProtocol


def holds_back(data: bytes) -> bool:
    """True for the head of a final response with a known length: its body is about to follow.

    uvicorn writes header names in lower case, its own ``transfer-encoding`` included.
    """
    return (
        data[:9] == b"HTTP/1.1 "
        and data[9:10] != b"1"  # informational: the client waits for it alone
        and b"\r\ntransfer-encoding:" not in data  # a stream: its head must not wait
    )


class CoalescingTransport:
    """A transport that sends a response's head with its body, and defers that while others are busy."""

    __slots__ = ("_deferred", "_held", "_loop", "_others_busy", "_transport")

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, others_busy: Callable[[], bool]
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._others_busy = others_busy
        self._held: bytes | None = None
        self._deferred: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._deferred:
            self._deferred.append(bytes(data))
            if sum(len(chunk) for chunk in self._deferred) > MAX_DEFERRED_BYTES:
                self.flush()
        elif self._held is not None:
            self._release(bytes(data))
        elif holds_back(bytes(data)):
            self._held = bytes(data)
        elif data:
            self._transport.write(data)

    def response_complete(self) -> None:
        """The answer is whole: a head still held (no body bytes: HEAD, 204, an empty 202) goes now."""
        if self._held is not None:
            self._release(b"")

    def _release(self, body: bytes) -> None:
        chunks = [self._held or b"", body] if body else [self._held or b""]
        self._held = None
        if self._others_busy():
            self._deferred = chunks
            self._loop.call_soon(self.flush)
        else:
            self._transport.writelines(chunks)

    def flush(self) -> None:
        """Send whatever is held or deferred (the end of the step, or the connection closing)."""
        chunks = [*([self._held] if self._held is not None else []), *self._deferred]
        self._held, self._deferred = None, []
        if chunks and not self._transport.is_closing():
            self._transport.writelines(chunks)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:  # asked once per request: cheaper here than through __getattr__
        return self._transport.is_closing()

    def abort(self) -> None:
        self._held, self._deferred = None, []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        waiting = len(self._held or b"") + sum(len(chunk) for chunk in self._deferred)
        return self._transport.get_write_buffer_size() + waiting

    def __getattr__(self, name: str) -> Any:
        # Everything else (flow control, extra info, set_protocol) is the transport's own.
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """What ``uvicorn.Config(http=...)`` takes: httptools parsing, answers written as described above."""

    draining = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.coalescing = CoalescingTransport(transport, self.loop, self._others_busy)
        super().connection_made(self.coalescing)  # type: ignore[arg-type]

    def _others_busy(self) -> bool:
        # uvicorn keeps every running request task of this server here (the caller's own included).
        return len(self.tasks) > 1

    def on_response_complete(self) -> None:
        self.coalescing.response_complete()
        super().on_response_complete()

    def shutdown(self) -> None:
        """Graceful shutdown: answer what is running or arriving with ``Connection: close``, then close."""
        self.draining = True
        if self.cycle is None or self.cycle.response_complete:
            # The keep-alive timer is what closes an idle connection; data arriving cancels it.
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(DRAIN_IDLE_S, self.timeout_keep_alive_handler)
        else:
            self.cycle.keep_alive = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.draining:
            self.cycle.keep_alive = False
