"""SIGTERM and kept-alive connections: a request that reaches an idle connection after SIGTERM is answered
(with ``Connection: close``), not dropped; an idle connection is closed soon, so the drain is not held up.

A real service process and a raw socket: the second request on the connection is sent after SIGTERM, as a
pooled client or a Service's proxy would send it when it reused the connection a moment too late.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from libmcp.http_protocol import DRAIN_IDLE_S
from tests.libmcp.conftest import demo_process as start_demo_process


@pytest.fixture
def demo_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    with start_demo_process({"MCP_SHUTDOWN_GRACE_S": "5"}) as started:
        yield started


def _request(call_id: int) -> bytes:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": call_id,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": f"call {call_id}"}},
        }
    ).encode()
    return (
        b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one response with a Content-Length; raises ConnectionError on EOF before it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head (got {data!r})")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of a response body")
        rest += chunk
    return head, rest[:length]


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(_request(1))
    head, _ = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
    return sock


def test_a_request_on_an_idle_kept_alive_connection_after_sigterm_is_answered_then_closed(
    demo_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = demo_process
    sock = _connect(url)
    process.send_signal(signal.SIGTERM)
    time.sleep(DRAIN_IDLE_S / 4)  # the listener is closed now; this connection is idle
    sock.sendall(_request(2))
    head, body = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body)["result"]["structuredContent"]["text"] == "call 2"
    assert sock.recv(1) == b""  # and the server closes it after that answer
    sock.close()
    assert process.wait(timeout=15) == 0


def test_an_idle_kept_alive_connection_is_closed_soon_after_sigterm(
    demo_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = demo_process
    sock = _connect(url)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert sock.recv(1) == b""
    assert time.monotonic() - signalled < DRAIN_IDLE_S + 4  # the drain window, not the 5 s grace period
    sock.close()
    assert process.wait(timeout=15) == 0
