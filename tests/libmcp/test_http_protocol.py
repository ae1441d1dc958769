"""The HTTP protocol the runner serves with: an answer leaves in one write, with the others of its step.

The protocol runs on the real event loop with the demo service's real app; only the socket is replaced
by a transport that records what would have been written, so the number of writes can be counted.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from typing import Any

import pytest
import uvicorn
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from prometheus_client import CollectorRegistry, Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from libmcp import Server, ServerSettings, create_app
from libmcp import http_protocol as http_protocol_module
from libmcp.http_edge import EdgeLimits, HttpEdge
from libmcp.http_protocol import (
    MAX_DEFERRED_BYTES,
    UVICORN_INTERNALS,
    CoalescingHttpToolsProtocol,
    CoalescingTransport,
    http_protocol,
    missing_internals,
)
from tests.libmcp.demo_service import DemoSettings, service
from tests.support.servers import REPO_ROOT


class RecordingTransport(asyncio.Transport):
    """Stands in for the socket: keeps each write as it came."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.events: list[str] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True
        self.events.append("close")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def tools_call_request(text: str) -> bytes:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}},
        }
    ).encode()
    head = (
        "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def answer_through(
    protocol_class: type[asyncio.Protocol], request: bytes, until: bytes = b'"id":7'
) -> RecordingTransport:
    server = Server(service, DemoSettings(), ServerSettings.model_validate({}))
    app = create_app(server)
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    transport = RecordingTransport()
    async with app.lifespan():
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
        protocol.connection_made(transport)
        protocol.data_received(request)
        for _ in range(1000):
            await asyncio.sleep(0)
            if until in b"".join(transport.writes):
                break
        await asyncio.sleep(0)
        protocol.connection_lost(None)
    return transport


def behind_the_edge(inner: type[HttpToolsProtocol]) -> type[asyncio.Protocol]:
    """``inner`` as the runner serves it: the HTTP edge's protocol in front."""
    rejections = Counter("rejections", "refusals", ["reason"], registry=CollectorRegistry())
    return HttpEdge(EdgeLimits.from_settings(ServerSettings()), rejections).protocol(inner)


@pytest.mark.parametrize(
    ("protocol_class", "writes"),
    [
        (HttpToolsProtocol, 2),
        (CoalescingHttpToolsProtocol, 1),
        (behind_the_edge(CoalescingHttpToolsProtocol), 1),
    ],
)
async def test_an_answer_leaves_in_one_write_where_stock_uvicorn_needs_two(
    protocol_class: type[asyncio.Protocol], writes: int
) -> None:
    transport = await answer_through(protocol_class, tools_call_request("héllo"))
    assert len(transport.writes) == writes, transport.writes
    answer = b"".join(transport.writes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["result"]["structuredContent"]["text"] == "héllo"


async def test_an_answer_without_body_bytes_is_sent_when_it_completes() -> None:
    """A notification's 202 has an empty body: its head alone goes out, once."""
    body = b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'
    request = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    transport = await answer_through(CoalescingHttpToolsProtocol, request, until=b"202 Accepted")
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 202 Accepted")


async def test_while_other_requests_are_busy_an_answer_waits_for_the_end_of_the_step() -> None:
    sockets = [RecordingTransport(), RecordingTransport()]
    transports = [CoalescingTransport(socket, asyncio.get_running_loop(), lambda: True) for socket in sockets]
    for number, transport in enumerate(transports):
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n")
        transport.write(b"%d" % number)
        transport.response_complete()
    assert [socket.writes for socket in sockets] == [[], []]
    await asyncio.sleep(0)
    assert [socket.writes for socket in sockets] == [
        [b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n0"],
        [b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n1"],
    ]


async def test_a_large_deferred_body_is_not_kept_back() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop(), lambda: True)
    size = 2 * MAX_DEFERRED_BYTES
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
    transport.write(b"x" * (size // 2))
    assert socket.writes == []
    transport.write(b"x" * (size // 2))
    assert len(b"".join(socket.writes)) > size


async def test_a_stream_head_and_an_interim_response_are_not_held() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop(), lambda: True)
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    stream_head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    transport.write(stream_head)
    transport.write(b"f\r\nevent: endpoint\n\r\n")
    assert socket.writes == [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        stream_head,
        b"f\r\nevent: endpoint\n\r\n",
    ]


async def test_closing_sends_a_held_head_first() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop(), lambda: False)
    head = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 21\r\n\r\n"
    transport.write(head)
    assert socket.writes == []
    assert transport.get_write_buffer_size() == len(head)
    transport.close()
    assert socket.events == ["write", "close"]
    assert socket.writes == [head]


async def test_a_held_answer_is_dropped_when_the_connection_is_gone() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop(), lambda: True)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    socket.close()
    await asyncio.sleep(0)
    assert socket.writes == []
    assert transport.is_closing()


async def test_a_lone_answer_leaves_as_soon_as_its_body_is_written() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop(), lambda: False)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert socket.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


# The internals the protocol leans on ------------------------------------------------------------


def pinned_uvicorn() -> SpecifierSet:
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    requirement = next(Requirement(line) for line in dependencies if line.startswith("uvicorn"))
    return requirement.specifier


def test_the_installed_uvicorn_is_in_the_pinned_range_and_has_every_internal_used() -> None:
    specifier = pinned_uvicorn()
    assert specifier.contains(uvicorn.__version__), (
        f"uvicorn {uvicorn.__version__} is outside the tested range {specifier}: check UVICORN_INTERNALS "
        "and the bytes holds_back() expects, then widen the pin"
    )
    assert any(spec.operator == "<" for spec in specifier), "the pin needs an upper bound"
    assert missing_internals() == []
    assert http_protocol() is CoalescingHttpToolsProtocol


async def test_without_an_internal_the_stock_uvicorn_protocol_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    dropped = "_an_internal_a_later_release_dropped"
    monkeypatch.setattr(http_protocol_module, "UVICORN_INTERNALS", (*UVICORN_INTERNALS, dropped))

    assert missing_internals() == [dropped]
    assert http_protocol() is HttpToolsProtocol
    transport = await answer_through(http_protocol(), tools_call_request("still served"))
    assert b"still served" in b"".join(transport.writes)
