"""The two values MCP traffic is reduced to on its way through libmcp: a read request and a reply.

Tool calls skip Starlette's request and response objects: the transports read headers straight from
the ASGI scope and hand back an :class:`HttpReply`, which goes out as two ASGI messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import Scope, Send

Headers = tuple[tuple[bytes, bytes], ...]
JSON = b"application/json"
# RFC 9110 section 8.6: no Content-Length on a 1xx or 204 answer (nor on 304, which has no body here).
WITHOUT_CONTENT_LENGTH = frozenset({*range(100, 200), 204, 304})


@dataclass(slots=True)
class HttpRequest:
    """One POST whose body has been read (within the size limit) and whose caller has been admitted."""

    scope: Scope
    body: bytes
    client_id: str

    def header(self, name: bytes) -> str | None:
        """The first value of a header (``name`` in lower case), or ``None``."""
        headers: list[tuple[bytes, bytes]] = self.scope["headers"]
        for key, value in headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def header_count(self, name: bytes) -> int:
        return sum(1 for key, _ in self.scope["headers"] if key == name)

    def query(self, name: str) -> str | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(name)
        return values[0] if values else None


# Not frozen: a frozen dataclass costs a microsecond more to build, on every call.
@dataclass(slots=True)
class HttpReply:
    """A complete HTTP answer: status, body, media type and extra headers."""

    status: int
    body: bytes = b""
    media_type: bytes | None = JSON
    headers: Headers = ()

    async def send(self, send: Send, extra_headers: Headers = ()) -> None:
        headers = (
            [(b"content-length", str(len(self.body)).encode())]
            if self.status not in WITHOUT_CONTENT_LENGTH
            else []
        )
        if self.media_type is not None and self.body:
            headers.append((b"content-type", self.media_type))
        headers.extend(self.headers)
        headers.extend(extra_headers)
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpReply:
    if headers is None:
        return HttpReply(status, orjson.dumps(payload))
    extra = tuple((key.lower().encode(), value.encode()) for key, value in (headers or {}).items())
    return HttpReply(status, orjson.dumps(payload), JSON, extra)


ACCEPTED = HttpReply(202, b"", None)
