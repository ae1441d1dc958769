"""A minimal HTTP/1.1 keep-alive client for load generation.

httpx spends more CPU per request than the servers being measured; this client does the least work
needed (one connection per virtual user, Content-Length bodies, SSE line reading) so that the
figures describe the server, and every target is measured with the same client.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class HttpResponse:
    status: int
    body: bytes


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> HttpResponse:
        assert self.reader is not None and self.writer is not None
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status, response_headers = await self._read_head()
        length = int(response_headers.get("content-length", "0"))
        payload = await self.reader.readexactly(length) if length else b""
        return HttpResponse(status, payload)

    async def open_stream(self, path: str, headers: dict[str, str] | None = None) -> int:
        """Send a GET whose response is a stream; returns the status and leaves the body to read_event."""
        assert self.writer is not None
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: text/event-stream"]
        lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, _ = await self._read_head()
        return status

    async def read_event(self) -> tuple[str, str]:
        """The next SSE event of a chunked event stream (chunk framing lines are skipped)."""
        assert self.reader is not None
        event, data = "message", ""
        while True:
            line = (await self.reader.readline()).decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                return event, data

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers
