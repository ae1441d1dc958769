"""Legacy SSE behind a round-robin load balancer: the session bus lets any replica take any post.

Real things only: Debian's redis-server, two filesystem replicas (``mcp-sse serve filesystem``),
haproxy in http mode balancing every request round robin, and the official SDK's SSE client.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client

from harness.haproxy import RoundRobinProxy
from harness.processes import ServiceProcess
from harness.redis import RedisServer


@dataclass
class Fleet:
    redis: RedisServer
    replicas: list[ServiceProcess]
    proxy: RoundRobinProxy


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    (tmp_path / "hello.txt").write_text("hello from the sandbox\n")
    with RedisServer() as redis:
        env = {
            "ALLOWED_PATHS": f"{tmp_path}:rw",
            "MCP_SESSION_BUS_URL": redis.url,
            "MCP_SESSION_BUS_TTL_S": "3",
            "MCP_SESSION_BUS_TIMEOUT_S": "0.5",
            "MCP_SESSION_BUS_ACK_TIMEOUT_S": "2",
        }
        replicas = [ServiceProcess("filesystem", env).start() for _ in range(2)]
        try:
            with RoundRobinProxy([f"127.0.0.1:{replica.port}" for replica in replicas]) as proxy:
                yield Fleet(redis, replicas, proxy)
        finally:
            for replica in replicas:
                replica.stop()


async def one_session(url: str, root: str) -> int:
    """initialize, tools/list and three tools/call over one SSE session; the operations that succeeded."""
    done = 0
    async with sse_client(f"{url}/sse") as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        done += 1
        tools = await session.list_tools()
        assert "read_file" in {tool.name for tool in tools.tools}
        done += 1
        for _ in range(3):
            result = await session.call_tool("read_file", {"path": f"{root}/hello.txt"})
            assert not result.is_error, result
            assert "hello from the sandbox" in str(result.content[0])
            done += 1
    return done


async def test_sdk_sse_client_completes_every_operation_through_round_robin(
    fleet: Fleet, tmp_path: Path
) -> None:
    started = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(
            *(one_session(fleet.proxy.url, str(tmp_path)) for _ in range(20)), return_exceptions=True
        ),
        timeout=50,
    )
    failures = [result for result in results if not isinstance(result, int)]
    assert failures == []
    assert sum(r for r in results if isinstance(r, int)) >= 100
    assert time.monotonic() - started < 50


def test_a_post_for_an_unknown_session_is_404_at_once(fleet: Fleet) -> None:
    started = time.monotonic()
    for _ in range(4):  # lands on each replica twice
        reply = httpx.post(
            f"{fleet.proxy.url}/messages?session_id=feedface",
            json={"jsonrpc": "2.0", "method": "ping", "id": 1},
        )
        assert reply.status_code == 404
        assert "unknown or closed session" in reply.json()["error"]
    assert time.monotonic() - started < 2


def open_stream(replica: ServiceProcess) -> tuple[socket.socket, str]:
    """A raw SSE stream opened on ``replica`` (a socket, read up to its endpoint event); its session id."""
    stream = socket.create_connection(("127.0.0.1", replica.port), timeout=10)
    stream.sendall(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    received = b""
    while b"\n\n" not in received.partition(b"session_id=")[2]:
        chunk = stream.recv(4096)
        assert chunk, f"the stream ended before its endpoint event: {received!r}"
        received += chunk
    return stream, received.split(b"session_id=")[1].split(b"\n")[0].decode()


def test_bus_down_fails_relays_fast_keeps_local_sessions_and_recovers(fleet: Fleet) -> None:
    owner, other = fleet.replicas
    stream, session_id = open_stream(owner)
    ping = {"jsonrpc": "2.0", "method": "ping", "id": 1}
    try:
        relayed = httpx.post(f"{other.url}/messages?session_id={session_id}", json=ping)
        assert relayed.status_code == 202

        fleet.redis.stop()
        started = time.monotonic()
        refused = httpx.post(f"{other.url}/messages?session_id={session_id}", json=ping, timeout=10)
        assert time.monotonic() - started < 1.5
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        assert "MCP_SESSION_BUS_URL" in refused.json()["error"]
        local = httpx.post(f"{owner.url}/messages?session_id={session_id}", json=ping)
        assert local.status_code == 202
        health = httpx.get(f"{other.url}/health").json()
        assert health["status"] == "degraded"
        assert health["checks"]["session_bus"]["status"] == "down"
        assert 'mcp_backend_up{check="session_bus"} 0.0' in httpx.get(f"{other.url}/metrics").text

        fleet.redis.start()
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline:
            status = httpx.post(f"{other.url}/messages?session_id={session_id}", json=ping).status_code
            if status == 202:
                break
            time.sleep(0.2)
        assert status == 202
        assert httpx.get(f"{other.url}/health").json()["checks"]["session_bus"]["status"] == "ok"
    finally:
        stream.close()


def test_a_session_whose_replica_died_answers_404_within_the_ttl(fleet: Fleet) -> None:
    owner, other = fleet.replicas
    stream, session_id = open_stream(owner)
    ping = {"jsonrpc": "2.0", "method": "ping", "id": 1}
    try:
        assert httpx.post(f"{other.url}/messages?session_id={session_id}", json=ping).status_code == 202
        assert owner.process is not None
        owner.process.kill()
        owner.process.wait(5)
        stream.settimeout(5)  # the stream ends at once, not a hang
        while stream.recv(4096):
            pass
        time.sleep(3.5)  # MCP_SESSION_BUS_TTL_S=3: the dead replica's beat has lapsed
        started = time.monotonic()
        gone = httpx.post(f"{other.url}/messages?session_id={session_id}", json=ping)
        assert gone.status_code == 404
        assert time.monotonic() - started < 1
    finally:
        stream.close()


def answers_on(stream: socket.socket, wanted: set[int], timeout: float) -> set[int]:
    """The ids of the ``message`` events that arrive on ``stream`` among ``wanted``, within ``timeout``."""
    stream.settimeout(0.5)
    seen: set[int] = set()
    received = b""
    deadline = time.monotonic() + timeout
    while seen != wanted and time.monotonic() < deadline:
        try:
            chunk = stream.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        received += chunk
        for wanted_id in wanted - seen:
            if f'"id":{wanted_id},'.encode() in received or f'"id":{wanted_id}}}'.encode() in received:
                seen.add(wanted_id)
    return seen


def test_redis_restarted_under_load_loses_no_accepted_message(fleet: Fleet) -> None:
    """Relayed pings go on while Redis stops and comes back: each post is 202 or a fast, named 503,
    and every one that was accepted is answered on the stream."""
    owner, other = fleet.replicas
    stream, session_id = open_stream(owner)
    accepted: set[int] = set()
    refused = 0
    try:
        with httpx.Client(timeout=10) as client:
            for number in range(1, 121):
                if number == 40:
                    fleet.redis.stop()
                if number == 70:
                    fleet.redis.start()
                message = {"jsonrpc": "2.0", "method": "ping", "id": number}
                started = time.monotonic()
                reply = client.post(f"{other.url}/messages?session_id={session_id}", json=message)
                if reply.status_code == 202:
                    accepted.add(number)
                else:
                    assert reply.status_code == 503, reply.text
                    assert "MCP_SESSION_BUS" in reply.json()["error"]
                    assert time.monotonic() - started < 3
                    refused += 1
                    time.sleep(0.05)
        assert refused > 0
        assert set(range(100, 121)) <= accepted  # relaying resumed by itself
        assert answers_on(stream, accepted, timeout=10) == accepted
    finally:
        stream.close()


def test_a_client_that_disconnects_mid_session_leaves_the_next_one_working(
    fleet: Fleet, tmp_path: Path
) -> None:
    owner, other = fleet.replicas
    stream, session_id = open_stream(owner)
    call = {
        "jsonrpc": "2.0",
        "method": "tools/call",
        "id": 7,
        "params": {"name": "list_allowed_roots", "arguments": {}},
    }
    assert httpx.post(f"{other.url}/messages?session_id={session_id}", json=call).status_code == 202
    stream.close()
    deadline = time.monotonic() + 5
    status = 202
    while time.monotonic() < deadline and status != 404:
        status = httpx.post(f"{other.url}/messages?session_id={session_id}", json=call).status_code
        time.sleep(0.1)
    assert status == 404  # the session ended with its client, on every replica
    assert asyncio.run(one_session(fleet.proxy.url, str(tmp_path))) == 5
