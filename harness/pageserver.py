"""A small real HTTP/1.1 server on a loopback address that serves crafted responses and counts traffic.

It runs its own asyncio loop in a thread and counts every accepted TCP connection, so a test can
assert that a refused fetch never reached it. Routes map a path to a :class:`Reply` or to a function
of the :class:`Received` request returning one; unknown paths answer 404.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class Received:
    """A request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Reply:
    """What to answer: status, headers, body; ``delay_s`` before the headers, ``chunks`` to stream slowly."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_s: float = 0.0
    chunks: list[bytes] | None = None
    chunk_delay_s: float = 0.0


Route = Reply | Callable[[Received], Reply]

_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
            308: "Permanent Redirect", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


class PageServer:
    """Serve ``routes`` on ``host`` (a loopback address) on an ephemeral port."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.routes: dict[str, Route] = {}
        self.connections = 0
        self.requests: list[Received] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base + path

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                route = self.routes.get(request.path.split("?", 1)[0])
                reply = Reply(404, {"Content-Type": "text/plain"}, b"not found")
                if route is not None:
                    reply = route(request) if callable(route) else route
                await self._write_reply(writer, reply, head_only=request.method == "HEAD")
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> Received | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Received(method, path, headers, body)

    async def _write_reply(self, writer: asyncio.StreamWriter, reply: Reply, *, head_only: bool) -> None:
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        body = b"".join(reply.chunks) if reply.chunks is not None else reply.body
        headers = {"Content-Length": str(len(body)), **reply.headers}
        head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1"))
        if not head_only:
            for chunk in reply.chunks if reply.chunks is not None else [body]:
                writer.write(chunk)
                await writer.drain()
                if reply.chunk_delay_s:
                    await asyncio.sleep(reply.chunk_delay_s)
        await writer.drain()

    @contextmanager
    def running(self) -> Iterator[PageServer]:
        started = threading.Event()
        stop: asyncio.Event | None = None

        async def main() -> None:
            nonlocal stop
            stop = asyncio.Event()
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, ssl=self.ssl_context
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._loop = asyncio.get_running_loop()
            started.set()
            await stop.wait()
            self._server.close()

        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                started.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        if not started.wait(10) or failure:
            raise RuntimeError(f"page server did not start: {failure}")
        try:
            yield self
        finally:
            assert self._loop is not None and stop is not None
            self._loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=10)
