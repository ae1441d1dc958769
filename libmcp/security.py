"""Request guards: bearer auth, Origin validation, body size and per-client rate limits.

:class:`SecurityMiddleware` runs before any route. It deliberately does not check the Host header:
Kubernetes probes, container networks and proxies all send Hosts nobody can list in advance, and DNS
rebinding is stopped by the Origin check plus bearer tokens instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libmcp.config import ServerSettings
from libmcp.observability import Metrics

logger = logging.getLogger("libmcp.security")

# Paths any caller may reach: orchestrator probes must work without a token.
OPEN_PATHS = frozenset({"/health"})
LOCAL_ORIGIN_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# CORS for browser clients (the MCP Inspector, web UIs) on allowed origins.
CORS_ALLOW_HEADERS = (
    b"authorization, content-type, accept, mcp-protocol-version, mcp-method, mcp-name, mcp-session-id, "
    b"last-event-id, traceparent, tracestate"
)
CORS_EXPOSE_HEADERS = b"mcp-session-id, mcp-protocol-version, www-authenticate, retry-after"


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """Local origins (any port) and the configured ones are allowed; ``*`` allows every origin."""
    allowed_set = {item.rstrip("/").lower() for item in allowed}
    if "*" in allowed_set or origin.rstrip("/").lower() in allowed_set:
        return True
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    return host in LOCAL_ORIGIN_HOSTS


class TokenBucket:
    """Per-client token buckets: ``rate_per_minute`` refill with a burst of ``burst`` calls."""

    def __init__(self, rate_per_minute: int, burst: int) -> None:
        self.rate_per_s = rate_per_minute / 60.0
        self.capacity = float(burst or rate_per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> float:
        """Spend one token; returns 0 when allowed, else the seconds until a token is free."""
        now = time.monotonic()
        tokens, last = self.buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate_per_s)
        if tokens >= 1.0:
            self.buckets[client] = (tokens - 1.0, now)
            if len(self.buckets) > 10_000:
                self._forget_full(now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate_per_s

    def _forget_full(self, now: float) -> None:
        for client, (tokens, last) in list(self.buckets.items()):
            if tokens + (now - last) * self.rate_per_s >= self.capacity:
                del self.buckets[client]


class RateLimiter:
    """Limits tool calls per client; a no-op when ``MCP_RATE_LIMIT_PER_MINUTE`` is 0."""

    def __init__(self, settings: ServerSettings) -> None:
        self.bucket = (
            TokenBucket(settings.rate_limit_per_minute, settings.rate_limit_burst)
            if settings.rate_limit_per_minute > 0
            else None
        )

    def retry_after(self, client: str) -> int:
        """0 when the call may go ahead, else whole seconds to wait (for ``Retry-After``)."""
        if self.bucket is None:
            return 0
        wait = self.bucket.take(client)
        return 0 if wait == 0 else max(1, math.ceil(wait))


def _token_id(token: str) -> str:
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = orjson.dumps(body)
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(key.encode(), value.encode()) for key, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class SecurityMiddleware:
    """Origin, bearer-token and body-size checks, then ``scope['state']['client_id']`` for rate limits."""

    def __init__(self, app: ASGIApp, settings: ServerSettings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.tokens = [token.encode() for token in settings.auth_tokens]

    def _reject(self, reason: str, scope: Scope, client: str) -> None:
        """Count and log one refusal (never the token or the body)."""
        self.metrics.http_rejections.labels(reason).inc()
        logger.warning(
            "request refused",
            extra={
                "fields": {
                    "event": "rejected",
                    "reason": reason,
                    "method": scope["method"],
                    "path": scope["path"],
                    "client": client,
                }
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path = scope["path"]
        client = scope.get("client")
        client_id = client[0] if client else "unknown"
        origin = headers.get(b"origin")
        if origin is not None and path not in OPEN_PATHS:
            if not origin_allowed(origin.decode("latin-1"), self.settings.allowed_origins):
                self._reject("origin", scope, client_id)
                await send_json(send, 403, {"error": f"Origin {origin.decode('latin-1')!r} is not allowed"})
                return
            if scope["method"] == "OPTIONS":
                await _preflight(send, origin)
                return
            send = _with_cors(send, origin)
        if path not in OPEN_PATHS:
            if self.tokens:
                token = self._bearer(headers.get(b"authorization"))
                if token is None:
                    self._reject("auth", scope, client_id)
                    await send_json(
                        send,
                        401,
                        {"error": "missing or invalid bearer token"},
                        {"www-authenticate": 'Bearer realm="mcp-sse", error="invalid_token"'},
                    )
                    return
                client_id = _token_id(token)
        scope.setdefault("state", {})["client_id"] = client_id
        if scope["method"] in ("POST", "PUT", "PATCH"):
            await self._with_bounded_body(scope, receive, send, headers)
            return
        await self.app(scope, receive, send)

    def _bearer(self, header: bytes | None) -> str | None:
        if not header:
            return None
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        value = value.strip()
        # compare_digest against every token, so timing does not reveal which one matched.
        matched = False
        for token in self.tokens:
            matched |= hmac.compare_digest(value, token)
        return value.decode("latin-1") if matched else None

    async def _with_bounded_body(self, scope: Scope, receive: Receive, send: Send, headers: dict) -> None:
        limit = self.settings.max_body_bytes
        declared = headers.get(b"content-length")
        too_large = {"error": f"request body exceeds {limit} bytes (MCP_MAX_BODY_BYTES)"}
        if declared is not None and declared.isdigit() and int(declared) > limit:
            self._reject("body_size", scope, scope["state"]["client_id"])
            await send_json(send, 413, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                self._reject("body_size", scope, scope["state"]["client_id"])
                await send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _preflight(send: Send, origin: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
                (b"access-control-max-age", b"600"),
                (b"vary", b"Origin"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: bytes) -> Send:
    async def send_with_cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {
                **message,
                "headers": [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin),
                    (b"access-control-expose-headers", CORS_EXPOSE_HEADERS),
                    (b"vary", b"Origin"),
                ],
            }
        await send(message)

    return send_with_cors
