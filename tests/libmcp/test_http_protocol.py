"""The HTTP protocol the runner serves with: an answer's head and body leave in one write.

The protocol runs on the real event loop with the demo service's real app; only the socket is replaced
by a transport that records what would have been written, so the number of writes can be counted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from libmcp import Server, ServerSettings, create_app
from libmcp.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport
from tests.libmcp.demo_service import DemoSettings, service


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


async def answer_through(protocol_class: type[HttpToolsProtocol], request: bytes) -> RecordingTransport:
    server = Server(service, DemoSettings(), ServerSettings.model_validate({}))
    app = create_app(server)
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    transport = RecordingTransport()
    async with app.router.lifespan_context(app):
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
        protocol.connection_made(transport)
        protocol.data_received(request)
        for _ in range(1000):
            await asyncio.sleep(0)
            if transport.writes and b'"id":7' in b"".join(transport.writes):
                break
        await asyncio.sleep(0)
        protocol.connection_lost(None)
    return transport


@pytest.mark.parametrize(
    ("protocol_class", "writes"), [(HttpToolsProtocol, 2), (CoalescingHttpToolsProtocol, 1)]
)
async def test_an_answer_leaves_in_one_write_where_stock_uvicorn_needs_two(
    protocol_class: type[HttpToolsProtocol], writes: int
) -> None:
    transport = await answer_through(protocol_class, tools_call_request("héllo"))
    assert len(transport.writes) == writes, transport.writes
    answer = b"".join(transport.writes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["result"]["structuredContent"]["text"] == "héllo"


async def test_writes_made_in_different_loop_steps_leave_separately() -> None:
    """A stream's events are held only until the end of the step that produced them."""
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())
    transport.write(b"event: a\n\n")
    transport.write(b"")
    assert socket.writes == []
    await asyncio.sleep(0)
    transport.write(b"event: b\n\n")
    await asyncio.sleep(0)
    assert socket.writes == [b"event: a\n\n", b"event: b\n\n"]


async def test_close_sends_what_is_pending_first() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert socket.events == ["write", "close"]
    await asyncio.sleep(0)
    assert socket.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]


async def test_what_is_written_after_the_connection_closed_is_dropped() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())
    transport.write(b"late")
    socket.close()
    await asyncio.sleep(0)
    assert socket.writes == []
    assert transport.is_closing()
