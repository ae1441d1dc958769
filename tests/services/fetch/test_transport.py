"""The pinned transport: public httpx and httpcore API only, failing the way httpx's own transport fails.

Each failure is staged by a real loopback server and sent once through httpx's stock
``AsyncHTTPTransport`` and once through :class:`PinnedTransport`: both must raise the same httpx
exception, which the fetch client then names the same way.
"""

from __future__ import annotations

import ast
import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType

import httpcore
import httpx
import pytest

from harness.pageserver import PageServer, Reply
from services.fetch import client as client_module
from services.fetch import transport as transport_module
from services.fetch.client import FetchClient, FetchError, describe_transport_error
from services.fetch.guard import Destination, Guard, GuardPolicy
from services.fetch.transport import PinnedTransport, pinned_to
from tests.services.fetch.conftest import FetchService, text_of
from tests.support.servers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that answers with whatever bytes ``handler`` writes; yields its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await reader.read()  # until the client gives up and hangs up
    writer.close()


async def closes_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nonly ten b")
    await writer.drain()
    writer.close()


async def resets_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.")
    await writer.drain()
    await asyncio.sleep(0.2)  # the client is now waiting for the rest of the body
    # A zero linger time makes close() send RST instead of FIN: the peer sees ECONNRESET.
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def answers_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    writer.close()


async def failure_through(transport: httpx.AsyncBaseTransport, port: int) -> httpx.HTTPError:
    """GET http://127.0.0.1:port/ and read the body through ``transport``; the httpx error it raised."""
    destination = Destination("127.0.0.1", port, ("127.0.0.1",))
    async with httpx.AsyncClient(transport=transport, timeout=0.5) as client:
        with pinned_to(destination), pytest.raises(httpx.HTTPError) as caught:
            async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
                async for _ in response.aiter_raw():
                    pass
    return caught.value


FAILURES: dict[str, tuple[Handler | None, type[httpx.HTTPError], str]] = {
    "connection refused": (None, httpx.ConnectError, "refused"),
    "no answer within the read timeout": (never_answers, httpx.ReadTimeout, "timeout"),
    "peer closing mid-body": (closes_mid_body, httpx.RemoteProtocolError, "protocol"),
    "peer resetting mid-body": (resets_mid_body, httpx.ReadError, "network"),
    "a status line that is not HTTP": (answers_garbage, httpx.RemoteProtocolError, "protocol"),
}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_a_failure_raises_what_httpxs_own_transport_raises_and_is_named_the_same(failure: str) -> None:
    handler, expected, kind = FAILURES[failure]
    errors: list[httpx.HTTPError] = []
    for transport in (httpx.AsyncHTTPTransport(trust_env=False), PinnedTransport()):
        if handler is None:
            errors.append(await failure_through(transport, free_port()))
            continue
        async with raw_server(handler) as port:
            errors.append(await failure_through(transport, port))
    stock, pinned = errors
    assert type(stock) is type(pinned) is expected
    url = httpx.URL("http://127.0.0.1/")
    named_stock, named_pinned = describe_transport_error(stock, url), describe_transport_error(pinned, url)
    assert (named_pinned.kind, named_pinned.message) == (named_stock.kind, named_stock.message)
    assert named_pinned.kind == kind


def fetch_client(timeout_s: float = 10) -> FetchClient:
    return FetchClient(
        Guard(GuardPolicy.build(allowed_hosts=["127.0.0.1"])),
        user_agent="test",
        timeout_s=timeout_s,
        max_response_bytes=1_000_000,
        max_redirects=2,
    )


async def fetch_failure(port: int, timeout_s: float = 10) -> FetchError:
    """The error a FetchClient raises for a GET of 127.0.0.1:``port``."""
    client = fetch_client(timeout_s)
    try:
        with pytest.raises(FetchError) as caught:
            await client.request("GET", f"http://127.0.0.1:{port}/")
    finally:
        await client.aclose()
    return caught.value


async def test_a_connect_failure_is_a_refused_error_naming_the_address() -> None:
    port = free_port()
    error = await fetch_failure(port)
    assert (error.kind, error.message) == ("refused", f"Connection refused by 127.0.0.1:{port}")


async def test_a_server_that_never_answers_is_a_timeout_error() -> None:
    async with raw_server(never_answers) as port:
        error = await fetch_failure(port, timeout_s=0.5)
    assert error.kind == "timeout"
    assert error.message.startswith("Timed out")


async def test_a_peer_closing_mid_body_is_a_protocol_error_saying_how_much_came() -> None:
    async with raw_server(closes_mid_body) as port:
        error = await fetch_failure(port)
    assert error.kind == "protocol"
    assert error.message == (
        f"HTTP protocol error from 127.0.0.1:{port}: peer closed connection without sending complete "
        "message body (received 10 bytes, expected 100)"
    )


@pytest.mark.parametrize("tool", ["fetch", "http_request"])
async def test_a_peer_closing_mid_body_is_an_error_result_of_the_tool(
    tool: str, fetch_service: Callable[..., FetchService]
) -> None:
    service = fetch_service(allowed_hosts=["127.0.0.1"], ignore_robots=True)
    async with raw_server(closes_mid_body) as port:
        result = await service.call(tool, {"url": f"http://127.0.0.1:{port}/"})
    assert result["isError"] is True
    assert text_of(result).startswith(f"HTTP protocol error from 127.0.0.1:{port}: peer closed connection")


async def test_a_host_nobody_checked_is_refused_without_dialling(page_server: PageServer) -> None:
    async with httpx.AsyncClient(transport=PinnedTransport()) as client:
        with pytest.raises(httpx.ConnectError, match="not checked by the guard"):
            await client.get(page_server.url("/"))
        other = Destination("127.0.0.1", page_server.port + 1, ("127.0.0.1",))
        with pinned_to(other), pytest.raises(httpx.ConnectError, match="not checked by the guard"):
            await client.get(page_server.url("/"))
    assert page_server.connections == 0


async def test_a_checked_name_is_reached_at_its_checked_address_through_a_public_client(
    page_server: PageServer,
) -> None:
    page_server.routes["/"] = Reply(headers={"Content-Type": "text/plain"}, body=b"pinned")
    destination = Destination("pinned.example", page_server.port, ("127.0.0.1",))
    async with httpx.AsyncClient(transport=PinnedTransport()) as client:
        with pinned_to(destination):
            response = await client.get(f"http://pinned.example:{page_server.port}/")
    assert (response.status_code, response.reason_phrase, response.content) == (200, "OK", b"pinned")
    assert page_server.requests[0].headers["host"] == f"pinned.example:{page_server.port}"


async def test_the_body_streams_chunk_by_chunk() -> None:
    """The server sends its second chunk only once the client has read the first."""
    first_read = asyncio.Event()

    async def waits_for_the_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
        await writer.drain()
        await first_read.wait()
        writer.write(b"-last")
        await writer.drain()
        writer.close()

    chunks: list[bytes] = []
    async with (
        raw_server(waits_for_the_client) as port,
        httpx.AsyncClient(transport=PinnedTransport()) as client,
    ):
        with pinned_to(Destination("127.0.0.1", port, ("127.0.0.1",))):
            async with asyncio.timeout(10), client.stream("GET", f"http://127.0.0.1:{port}/") as response:
                async for chunk in response.aiter_raw():
                    chunks.append(chunk)
                    first_read.set()
    assert chunks == [b"first", b"-last"]


PUBLIC_HTTPCORE_ERRORS = [
    name
    for name in httpcore.__all__
    if isinstance(getattr(httpcore, name), type)
    and issubclass(getattr(httpcore, name), Exception)
    # httpcore's pool catches this one itself to retry on another connection; it never reaches httpx.
    and name != "ConnectionNotAvailable"
]


@pytest.mark.parametrize("name", PUBLIC_HTTPCORE_ERRORS)
async def test_every_httpcore_error_becomes_the_httpx_error_of_the_same_name(name: str) -> None:
    """A new httpcore error class, or one httpx stops mirroring, fails here instead of leaking through."""

    class RaisingPool(httpcore.AsyncConnectionPool):
        async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
            raise getattr(httpcore, name)("staged")

    transport = PinnedTransport()
    transport.pool = RaisingPool()
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.HTTPError) as caught:
            await client.get("http://127.0.0.1:1/")
    assert type(caught.value) is getattr(httpx, name)
    assert str(caught.value) == "staged"
    assert isinstance(caught.value.__cause__, getattr(httpcore, name))


@pytest.mark.parametrize("module", [transport_module, client_module], ids=lambda module: module.__name__)
def test_the_fetch_client_touches_no_private_name_of_httpx_or_httpcore(module: ModuleType) -> None:
    """Private names of other objects, and imports from httpx's or httpcore's private modules, are absent."""
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    private_imports = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith(("httpx._", "httpcore._"))
    ]
    foreign_private = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert private_imports == []
    assert foreign_private == []
