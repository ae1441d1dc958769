"""The service's one HTTP client: pooled, pinned to checked addresses, size- and time-bounded.

Every hop of a request goes through :class:`FetchClient.request`: the guard resolves and checks the
URL's host, the connection is made to the checked addresses only (:mod:`services.fetch.transport`
refuses any other), redirects are followed by hand so each hop is checked the same way, and the body
is read as a stream, decompressed here with a bound on output (gzip/deflate only), and cut at the size cap.
Every failure is a :class:`FetchError` whose message says which failure it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.cookiejar
import ssl
import typing
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from services.fetch.guard import BlockedError, Destination, Guard, ResolveError
from services.fetch.transport import PinnedTransport, pinned_to

# A body that inflates more than this many times its compressed size, past the first MiB, is a bomb.
MAX_DECOMPRESSION_RATIO = 100
RATIO_CHECK_FLOOR = 1 << 20
_DECODE_STEP = 1 << 16

HopCheck = Callable[[httpx.URL], Awaitable[None]]


class FetchError(Exception):
    """A request that failed in a way the model should hear about; ``kind`` names the failure."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(slots=True)
class FetchedResponse:
    """A finished response: the final URL after redirects, its status, headers and (decoded) body."""

    url: httpx.URL
    final_url: httpx.URL
    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    body_truncated: bool
    redirects: int

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", ""))


class FetchClient:
    """The pooled client every tool call shares (created at start-up, closed at shutdown)."""

    def __init__(
        self,
        guard: Guard,
        *,
        user_agent: str,
        timeout_s: float,
        max_response_bytes: int,
        max_redirects: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.guard = guard
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        self.http = httpx.AsyncClient(
            transport=PinnedTransport(ssl_context),
            follow_redirects=False,
            trust_env=False,
            timeout=timeout_s,
            # One client serves every caller: never keep a cookie one site set for the next request.
            cookies=http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float | None = None,
        max_bytes: int | None = None,
        max_redirects: int | None = None,
        before_hop: HopCheck | None = None,
    ) -> FetchedResponse:
        """Send a request, following redirects, each hop checked; raises :class:`FetchError`.

        ``before_hop(url)`` runs before every hop after the guard (the robots.txt check of fetch).
        """
        budget = min(timeout_s or self.timeout_s, self.timeout_s)
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise FetchError("invalid_url", f"Invalid URL {str(url)!r}: {exc}") from None
        try:
            async with asyncio.timeout(budget):
                return await self._follow(
                    method, target, headers, content, budget, max_bytes or self.max_response_bytes,
                    self.max_redirects if max_redirects is None else max_redirects, before_hop,
                )  # fmt: skip
        except TimeoutError:
            raise FetchError(
                "timeout", f"Timed out: {target} did not answer in full within {budget:g} s"
            ) from None

    async def _follow(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        timeout_s: float,
        max_bytes: int,
        max_redirects: int,
        before_hop: HopCheck | None,
    ) -> FetchedResponse:
        request = self.http.build_request(method, url, headers=headers, content=content, timeout=timeout_s)
        for hop in range(max_redirects + 1):
            destination = await self._check(request.url)
            if before_hop is not None:
                await before_hop(request.url)
            async with self._send(request, destination) as response:
                if response.next_request is None:
                    body, truncated = b"", False
                    if method != "HEAD":
                        body, truncated = await read_body(response, max_bytes)
                    return FetchedResponse(
                        url, request.url, response.status_code, response.reason_phrase,
                        response.headers, body, truncated, hop,
                    )  # fmt: skip
                request = response.next_request
        raise FetchError("redirects", f"Too many redirects: {url} redirected more than {max_redirects} times")

    async def _check(self, url: httpx.URL) -> Destination:
        try:
            return await self.guard.check(url)
        except BlockedError as exc:
            raise FetchError("blocked", f"Blocked by the SSRF guard: {exc}. {_OPEN_UP}") from None
        except ResolveError as exc:
            raise FetchError("dns", f"DNS failure: {exc}") from None

    @contextlib.asynccontextmanager
    async def _send(self, request: httpx.Request, destination: Destination) -> AsyncIterator[httpx.Response]:
        """Send one request pinned to its checked destination; the response is closed on exit.

        A transport failure while the body is read (the peer hanging up mid-body) is named like one
        while sending.
        """
        with pinned_to(destination):
            try:
                response = await self.http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise describe_transport_error(exc, request.url) from None
        try:
            yield response
        except httpx.HTTPError as exc:
            raise describe_transport_error(exc, request.url) from None
        finally:
            await response.aclose()


_OPEN_UP = "FETCH_ALLOWED_HOSTS or FETCH_ALLOW_PRIVATE=true opens the guard for hosts you trust"


def describe_transport_error(exc: httpx.HTTPError, url: httpx.URL) -> FetchError:
    """Name the failure behind an httpx error: timeout, TLS, refused, or another connection failure."""
    where = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    if isinstance(exc, httpx.TimeoutException):
        return FetchError("timeout", f"Timed out talking to {where} ({type(exc).__name__})")
    causes = list(_causes(exc))
    tls = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
    if tls is not None:
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls)
        return FetchError("tls", f"TLS error with {where}: {reason}")
    if any(
        isinstance(c, ConnectionRefusedError) or getattr(c, "errno", None) == errno.ECONNREFUSED
        for c in causes
    ):
        return FetchError("refused", f"Connection refused by {where}")
    if isinstance(exc, httpx.ConnectError):
        return FetchError("connect", f"Could not connect to {where}: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return FetchError("protocol", f"HTTP protocol error from {where}: {exc}")
    return FetchError("network", f"Network error with {where}: {type(exc).__name__}: {exc}")


def _causes(exc: BaseException) -> typing.Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)


# Bodies -------------------------------------------------------------------------------------------


class _Decoder:
    """Content-Encoding decoding that never produces more than it is asked for at once."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib: typing.Any = None
        if coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._zlib = None  # zlib-wrapped or raw: decided on the first bytes
        elif coding not in ("", "identity"):
            raise FetchError(
                "encoding", f"Unsupported Content-Encoding {coding!r} (gzip and deflate are read)"
            )

    def decode(self, data: bytes) -> typing.Iterator[bytes]:
        if self.coding in ("", "identity"):
            yield data
            return
        if self._zlib is None:
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        pending = data
        try:
            while True:
                out = self._zlib.decompress(pending, _DECODE_STEP)
                if out:
                    yield out
                pending = self._zlib.unconsumed_tail
                if not pending:
                    return
        except zlib.error as exc:
            raise FetchError("encoding", f"Corrupt {self.coding} body: {exc}") from None


async def read_body(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """The decoded body, cut at ``max_bytes`` (second value True when cut); raises on a decompression bomb."""
    codings = [
        c.strip().lower() for c in response.headers.get("content-encoding", "").split(",") if c.strip()
    ]
    codings = [c for c in codings if c != "identity"]
    if len(codings) > 1:
        raise FetchError("encoding", f"Unsupported stacked Content-Encoding {', '.join(codings)}")
    decoder = _Decoder(codings[0] if codings else "")
    parts: list[bytes] = []
    size = 0
    raw_size = 0
    chunks: AsyncIterator[bytes] = response.aiter_raw()
    async for chunk in chunks:
        raw_size += len(chunk)
        for piece in decoder.decode(chunk):
            size += len(piece)
            if size > max_bytes:
                parts.append(piece[: len(piece) - (size - max_bytes)])
                return b"".join(parts), True
            if size > RATIO_CHECK_FLOOR and size > MAX_DECOMPRESSION_RATIO * raw_size:
                raise FetchError(
                    "too_large",
                    f"Too large: the {decoder.coding} body of {response.url} inflates more than "
                    f"{MAX_DECOMPRESSION_RATIO}:1 (a decompression bomb); refused after {size:,} bytes",
                )
            parts.append(piece)
    return b"".join(parts), False
