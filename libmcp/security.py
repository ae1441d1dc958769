"""Request guards: bearer auth, Origin validation, body size and per-client rate limits.

:class:`RequestGuard` runs before any route. It deliberately does not check the Host header:
Kubernetes probes, container networks and proxies all send Hosts nobody can list in advance, and DNS
rebinding is stopped by the Origin check plus bearer tokens instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from starlette.types import Receive, Scope

from libmcp.config import ServerSettings
from libmcp.endpoints import OPEN_PATHS
from libmcp.http import Headers, HttpReply, json_reply
from libmcp.observability import Metrics

logger = logging.getLogger("libmcp.security")

# Paths any caller may reach: orchestrator probes must work without a token.
LOCAL_ORIGIN_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# CORS for browser clients (the MCP Inspector, web UIs) on allowed origins.
CORS_ALLOW_HEADERS = (
    b"authorization, content-type, accept, mcp-protocol-version, mcp-method, mcp-name, mcp-session-id, "
    b"last-event-id, traceparent, tracestate"
)
CORS_EXPOSE_HEADERS = b"mcp-session-id, mcp-protocol-version, www-authenticate, retry-after"


# What a browser sends as Origin: scheme://host[:port], nothing more. urlsplit is no judge of it: it
# reads "http://evil.example\@localhost" as the host localhost.
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*)"
    r"(?::[0-9]{1,5})?"
)


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """Local http(s) origins (any port) and the configured ones are allowed; ``*`` allows every origin.

    Only a well-formed origin is considered at all: no userinfo, path, backslash or ``null``.
    """
    origin = origin.lower()
    parsed = _ORIGIN.fullmatch(origin)
    if parsed is None:
        return False
    allowed_set = {item.rstrip("/").lower() for item in allowed}
    if "*" in allowed_set or origin in allowed_set:
        return True
    return parsed["scheme"] in ("http", "https") and parsed["host"].strip("[]") in LOCAL_ORIGIN_HOSTS


class TokenBucket:
    """Per-client token buckets: ``rate_per_minute`` refill with a burst of ``burst`` messages."""

    def __init__(self, rate_per_minute: int, burst: int) -> None:
        self.rate_per_s = rate_per_minute / 60.0
        self.capacity = float(burst or rate_per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str, count: int = 1) -> float:
        """Spend ``count`` tokens at once; returns 0 when allowed, else the seconds until they are there
        (nothing is spent then). ``count`` must not exceed the capacity."""
        now = time.monotonic()
        tokens, last = self.buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate_per_s)
        if tokens >= count:
            self.buckets[client] = (tokens - count, now)
            if len(self.buckets) > 10_000:
                self._forget_full(now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (count - tokens) / self.rate_per_s

    def _forget_full(self, now: float) -> None:
        for client, (tokens, last) in list(self.buckets.items()):
            if tokens + (now - last) * self.rate_per_s >= self.capacity:
                del self.buckets[client]


class RateLimiter:
    """Limits JSON-RPC messages (every method, each batch entry) per client; a no-op when
    ``MCP_RATE_LIMIT_PER_MINUTE`` is 0."""

    def __init__(self, settings: ServerSettings) -> None:
        self.per_minute = settings.rate_limit_per_minute
        self.bucket = (
            TokenBucket(settings.rate_limit_per_minute, settings.rate_limit_burst)
            if settings.rate_limit_per_minute > 0
            else None
        )
        self.burst = int(self.bucket.capacity) if self.bucket is not None else 0

    def retry_after(self, client: str, count: int = 1) -> int:
        """0 when ``count`` messages may go ahead, else whole seconds to wait (for ``Retry-After``).

        More messages than the burst can never go ahead at once: the caller refuses those itself."""
        if self.bucket is None:
            return 0
        wait = self.bucket.take(client, count)
        return 0 if wait == 0 else max(1, math.ceil(wait))


def _token_id(token: str) -> str:
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]


class RequestGuard:
    """Origin, bearer-token and body-size checks, run before any route answers.

    :meth:`admit` decides from the headers alone; :meth:`read_body` reads a POST body within the limit.
    A refusal comes back as the :class:`HttpReply` to send, counted and logged (never the token).

    The bodies of all requests being read or answered together are bounded too
    (``MCP_MAX_BODY_BYTES_IN_FLIGHT``): many connections each sending a body of the allowed size would
    otherwise hold connections times ``MCP_MAX_BODY_BYTES`` of memory.
    """

    def __init__(self, settings: ServerSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tokens = [token.encode() for token in settings.auth_tokens]
        self.too_large = json_reply(
            {"error": f"request body exceeds {settings.max_body_bytes} bytes (MCP_MAX_BODY_BYTES)"}, 413
        )
        self.body_bytes_in_flight = 0
        self.too_many_bodies = json_reply(
            {
                "error": "the service is holding as many request bodies as it may "
                f"({settings.max_body_bytes_in_flight} bytes, MCP_MAX_BODY_BYTES_IN_FLIGHT); retry"
            },
            503,
            {"Retry-After": "1"},
        )

    def release_body(self, body: bytes) -> None:
        """The request whose body :meth:`read_body` returned has been answered: its bytes are free."""
        self.body_bytes_in_flight -= len(body)

    def _hold(self, size: int) -> bool:
        if self.body_bytes_in_flight + size > self.settings.max_body_bytes_in_flight:
            return False
        self.body_bytes_in_flight += size
        return True

    def admit(self, scope: Scope) -> Admission | HttpReply:
        path = scope["path"]
        client = scope.get("client")
        client_id = client[0] if client else "unknown"
        origin = authorization = duplicate = None
        for key, value in scope["headers"]:
            if key == b"origin":
                duplicate = key if origin is not None else duplicate
                origin = value
            elif key == b"authorization":
                duplicate = key if authorization is not None else duplicate
                authorization = value
        if path in OPEN_PATHS:
            return Admission(client_id)
        if duplicate is not None:
            # Which of two values counts is each proxy's guess: refuse rather than pick one.
            self._reject("duplicate_header", scope, client_id)
            return json_reply({"error": f"more than one {duplicate.decode().title()} header"}, 400)
        if origin is not None:
            if not origin_allowed(origin.decode("latin-1"), self.settings.allowed_origins):
                self._reject("origin", scope, client_id)
                return json_reply({"error": f"Origin {origin.decode('latin-1')!r} is not allowed"}, 403)
            if scope["method"] == "OPTIONS":
                return _preflight(origin)
        if self.tokens:
            token = self._bearer(authorization)
            if token is None:
                self._reject("auth", scope, client_id)
                refusal = json_reply(
                    {"error": "missing or invalid bearer token"},
                    401,
                    {"www-authenticate": 'Bearer realm="mcp-sse", error="invalid_token"'},
                )
                # CORS headers too, so a browser client can read the 401 and its WWW-Authenticate.
                return replace(refusal, headers=refusal.headers + Admission(client_id, origin).cors_headers)
            client_id = _token_id(token)
        return Admission(client_id, origin)

    async def read_body(self, scope: Scope, receive: Receive, client_id: str) -> bytes | HttpReply | None:
        """The whole body, a 413 or 503 reply, or ``None`` if the client went away.

        A body returned is counted in flight until :meth:`release_body`; on every other outcome this
        method gives back what it counted.
        """
        limit = self.settings.max_body_bytes
        declared = 0
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit():
                declared = int(value)
                if declared > limit:
                    self._reject("body_size", scope, client_id)
                    return self.too_large
        held = declared  # what is counted in flight: the declared length, then what arrived beyond it
        if not self._hold(held):
            self._reject("body_bytes_in_flight", scope, client_id)
            return self.too_many_bodies
        chunks: list[bytes] = []
        size = 0
        outcome: bytes | HttpReply | None = None
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    self._reject("body_size", scope, client_id)
                    outcome = self.too_large
                    return outcome
                if size > held:
                    if not self._hold(size - held):
                        self._reject("body_bytes_in_flight", scope, client_id)
                        outcome = self.too_many_bodies
                        return outcome
                    held = size
                chunks.append(chunk)
                if not message.get("more_body", False):
                    outcome = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    return outcome
        finally:
            # Keep exactly the returned body's bytes counted (a declared length the client did not
            # send in full is given back); give back everything otherwise.
            kept = len(outcome) if isinstance(outcome, bytes) else 0
            self.body_bytes_in_flight -= held - kept

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


# Not frozen: a frozen dataclass costs a microsecond more to build, on every call.
@dataclass(slots=True)
class Admission:
    """An admitted caller: who it is (for rate limits and logs) and its Origin, if any (for CORS)."""

    client_id: str
    origin: bytes | None = None

    @property
    def cors_headers(self) -> Headers:
        if self.origin is None:
            return ()
        return (
            (b"access-control-allow-origin", self.origin),
            (b"access-control-expose-headers", CORS_EXPOSE_HEADERS),
            (b"vary", b"Origin"),
        )


def _preflight(origin: bytes) -> HttpReply:
    return HttpReply(
        204,
        headers=(
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
            (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
            (b"access-control-max-age", b"600"),
            (b"vary", b"Origin"),
        ),
    )
