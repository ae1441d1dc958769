"""The SSE transport's bounds: sessions in total and per identity, session ownership, and the outbox
of a client that does not read its stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from tests.libmcp.conftest import demo_process
from tests.libmcp.demo_service import service
from tests.libmcp.test_sse_transport import SseStream, request


def metric(url: str, name: str, headers: dict[str, str] | None = None) -> float:
    for line in httpx.get(f"{url}/metrics", headers=headers).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} is not exported")


async def test_one_client_opening_1500_sessions_is_refused_past_its_cap(serve_service):
    url, server = serve_service(service, sse_max_sessions_per_client=5)
    statuses: list[int] = []
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        for _ in range(1500):
            response = await stack.enter_async_context(client.stream("GET", f"{url}/sse"))
            statuses.append(response.status_code)
            if response.status_code != 200:
                refusal = json.loads(await response.aread())
                await response.aclose()
        assert server.metrics.sse_sessions._value.get() == 5
    assert statuses.count(200) == 5 and statuses.count(429) == 1495
    assert "MCP_SSE_MAX_SESSIONS_PER_CLIENT" in refusal["error"]
    assert server.metrics.http_rejections.labels("sse_sessions_per_client")._value.get() == 1495


async def test_sessions_are_capped_in_total_with_503_and_the_cap_is_exported(serve_service):
    tokens = ["a", "b", "c"]
    url, server = serve_service(
        service, auth_tokens=tokens, sse_max_sessions=4, sse_max_sessions_per_client=2
    )
    auth = {token: {"Authorization": f"Bearer {token}"} for token in tokens}
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))

        async def open_stream(token: str) -> httpx.Response:
            return await stack.enter_async_context(client.stream("GET", f"{url}/sse", headers=auth[token]))

        assert [(await open_stream("a")).status_code for _ in range(3)] == [200, 200, 429]
        assert [(await open_stream("b")).status_code for _ in range(2)] == [200, 200]
        full = await open_stream("c")
        assert full.status_code == 503
        assert full.headers["retry-after"].isdigit()
        assert "MCP_SSE_MAX_SESSIONS" in json.loads(await full.aread())["error"]
        assert metric(url, "mcp_sse_sessions_open", auth["c"]) == 4
        assert metric(url, "mcp_sse_sessions_max", auth["c"]) == 4
    assert server.metrics.http_rejections.labels("sse_sessions")._value.get() == 1
    # The sessions ended with their streams: the caps count only open ones.
    for _ in range(100):
        if server.metrics.sse_sessions._value.get() == 0:
            break
        await asyncio.sleep(0.02)
    async with open_session_as(url, auth["c"]):
        pass


async def test_a_session_takes_posts_only_from_the_identity_that_opened_it(serve_service):
    url, server = serve_service(service, auth_tokens=["A", "B"])
    async with open_session_as(url, {"Authorization": "Bearer A"}) as (client, stream, endpoint):
        stolen = await client.post(endpoint, json=request(1, "ping"), headers={"Authorization": "Bearer B"})
        assert stolen.status_code == 403
        assert "belongs to the client that opened its stream" in stolen.json()["error"]
        own = await client.post(endpoint, json=request(2, "ping"), headers={"Authorization": "Bearer A"})
        assert own.status_code == 202
        _, data = await stream.next_event()
        assert json.loads(data)["id"] == 2
    assert server.metrics.http_rejections.labels("sse_session_owner")._value.get() == 1


def test_a_client_that_never_reads_its_stream_is_disconnected_and_memory_stays_bounded():
    outbox = 1_048_576
    # WARNING: no call log lines, which would fill the unread stdout pipe of the child.
    env = {"MCP_SSE_OUTBOX_BYTES": str(outbox), "MCP_LOG_LEVEL": "WARNING"}
    # Each post: a batch of 64 calls answering ~186 KiB each (the text, and again in the text block),
    # one event of ~12 MB; 40 of them held for a client that never reads would be ~480 MB.
    batch = [
        {
            "jsonrpc": "2.0",
            "id": n,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "z" * 9_300, "times": 10}},
        }
        for n in range(64)
    ]
    with demo_process(env) as (process, url):
        child = psutil.Process(process.pid)
        stream = _raw_sse_stream(url)
        endpoint = _read_endpoint(stream)
        rss_before = child.memory_info().rss
        statuses = []
        with httpx.Client(timeout=60) as client:
            for _ in range(40):
                statuses.append(client.post(f"{url}{endpoint}", json=batch).status_code)
                if statuses[-1] == 404:
                    break
                time.sleep(0.05)
        rss_after = child.memory_info().rss
        growth_mb = (rss_after - rss_before) / 1e6
        print(f"posts {len(statuses)} statuses {set(statuses)} RSS +{growth_mb:.0f} MB")
        assert statuses[-1] == 404, statuses  # the session was closed while the client still posted
        assert growth_mb < 150, f"RSS grew by {growth_mb:.0f} MB"
        # Reading now: what was already on its way, then the last event saying why, then the end.
        events = _read_events_to_the_end(stream)
        assert events[-1][0] == "error"
        final = json.loads(events[-1][1])
        assert final["setting"] == "MCP_SSE_OUTBOX_BYTES"
        assert f"passed {outbox} bytes (MCP_SSE_OUTBOX_BYTES)" in final["error"]
        assert all(event == "message" for event, _ in events[:-1])
        assert metric(url, 'mcp_http_rejections_total{reason="sse_outbox"}') == 1
        assert metric(url, "mcp_sse_sessions_open") == 0
        # Nothing else is affected: a new session works.
        other = _raw_sse_stream(url)
        other_endpoint = _read_endpoint(other)
        assert httpx.post(f"{url}{other_endpoint}", json=request(1, "ping")).status_code == 202
        other.close()


async def test_sse_batches_are_capped_like_every_transports(serve_service):
    url, server = serve_service(service, max_batch_messages=3)
    async with open_session_as(url, {}) as (client, stream, endpoint):
        refused = await client.post(endpoint, json=[request(n, "ping") for n in range(4)])
        assert refused.status_code == 413
        assert "MCP_MAX_BATCH_MESSAGES" in refused.json()["error"]["message"]
        assert (await client.post(endpoint, json=[request(n, "ping") for n in range(3)])).status_code == 202
        _, data = await stream.next_event()
        assert [answer["id"] for answer in json.loads(data)] == [0, 1, 2]
    assert server.metrics.calls.requests[("ping", "sse", "ok")] == 3


async def test_falling_behind_cancels_the_sessions_pending_calls_and_nothing_else(serve_service):
    url, server = serve_service(service, sse_outbox_bytes=65_536)
    big = [
        {
            "jsonrpc": "2.0",
            "id": n,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "q" * 9_300, "times": 10}},
        }
        for n in range(32)
    ]
    slow_call = request("slow", "tools/call", {"name": "sleep", "arguments": {"seconds": 30}})
    stream = _raw_sse_stream(url)
    endpoint = f"{url}{_read_endpoint(stream)}"
    async with open_session_as(url, {}) as (client, other, other_endpoint), httpx.AsyncClient() as poster:
        assert (await poster.post(endpoint, json=slow_call)).status_code == 202
        for _ in range(100):
            if server.metrics.calls.in_flight == 1:
                break
            await asyncio.sleep(0.02)
        for _ in range(20):
            if (await poster.post(endpoint, json=big)).status_code == 404:
                break
            await asyncio.sleep(0.05)
        for _ in range(100):
            if server.metrics.tool_call_count("sleep", "cancelled") == 1:
                break
            await asyncio.sleep(0.02)
        assert server.metrics.tool_call_count("sleep", "cancelled") == 1
        assert server.metrics.http_rejections.labels("sse_outbox")._value.get() == 1
        # The other session, on its own stream, is untouched.
        assert (await client.post(other_endpoint, json=request(7, "ping"))).status_code == 202
        _, data = await other.next_event()
        assert json.loads(data)["id"] == 7
    stream.close()


# Helpers ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_session_as(url: str, headers: dict[str, str]) -> Any:
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        async with client.stream("GET", f"{url}/sse") as response:
            assert response.status_code == 200
            stream = SseStream(response)
            event, endpoint = await stream.next_event()
            assert event == "endpoint"
            yield client, stream, f"{url}{endpoint}"


def _raw_sse_stream(url: str) -> socket.socket:
    """A GET /sse on a socket with a small receive buffer, so that not reading it soon stalls the server."""
    address = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    sock.settimeout(30)
    sock.connect((address.hostname, address.port))
    sock.sendall(f"GET /sse HTTP/1.1\r\nHost: {address.netloc}\r\nAccept: text/event-stream\r\n\r\n".encode())
    return sock


def _read_endpoint(sock: socket.socket) -> str:
    """The endpoint event's URL, read byte by byte: nothing after it is taken off the socket."""
    data = b""
    while (found := re.search(rb"event: endpoint\ndata: ([^\n]*)\n\n", data)) is None:
        byte = sock.recv(1)
        assert byte, f"the stream ended before its endpoint event: {data!r}"
        data += byte
    assert data.startswith(b"HTTP/1.1 200 "), data
    return found[1].decode()


def _read_events_to_the_end(sock: socket.socket) -> list[tuple[str, str]]:
    """Every SSE event until the server ends the stream (chunked framing dropped)."""
    chunks = []
    while True:
        part = sock.recv(1 << 20)
        if not part:
            break
        chunks.append(part)
        if b"0\r\n\r\n" in part[-7:]:
            break
    raw = _dechunk(b"".join(chunks).removeprefix(b"\r\n"))  # the endpoint event's chunk ended here
    events = []
    for block in raw.split(b"\n\n"):
        lines = block.split(b"\n")
        event = next((line[6:].strip() for line in lines if line.startswith(b"event:")), None)
        data = b"\n".join(line[5:].strip() for line in lines if line.startswith(b"data:"))
        if event is not None:
            events.append((event.decode(), data.decode()))
    return events


def _dechunk(raw: bytes) -> bytes:
    body, position = [], 0
    while True:
        end = raw.index(b"\r\n", position)
        size = int(raw[position:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(body)
        body.append(raw[end + 2 : end + 2 + size])
        position = end + 2 + size + 2
