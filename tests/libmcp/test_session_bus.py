"""The session bus's own bounds against a real redis-server: queue per session, ack timeout, claims' TTL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness.redis import RedisServer
from libmcp.config import ServerSettings
from libmcp.http import HttpReply
from libmcp.session_bus import Envelope, SessionBus


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def settings(redis: RedisServer, **extra: object) -> ServerSettings:
    return ServerSettings.model_validate({"session_bus_url": redis.url, "session_bus_ttl_s": 1, **extra})


def ping(session_id: str) -> Envelope:
    return Envelope("sse", session_id, "client-a", b'{"jsonrpc":"2.0","method":"ping","id":1}', None)


async def test_a_full_session_queue_is_refused_naming_the_setting(redis: RedisServer) -> None:
    owner = SessionBus(settings(redis, session_bus_queue_messages=1))
    poster = SessionBus(settings(redis, session_bus_queue_messages=1, session_bus_ack_timeout_s=1))
    # The owner is announced and claims, but never takes its inbox: messages wait in the queue.
    await owner._connect()
    await owner.claim("sse", "s1")
    await poster.start()
    try:
        first = asyncio.ensure_future(poster.relay(ping("s1")))
        await asyncio.sleep(0.2)
        second = await poster.relay(ping("s1"))
        assert second.outcome == "full"
        # Not taken within MCP_SESSION_BUS_ACK_TIMEOUT_S: taken back off the queue, safe to resend.
        taken_back = await first
        assert taken_back.outcome == "not_taken"
        assert "taken back" in taken_back.detail
    finally:
        await poster.stop()
        await owner.stop()


async def test_a_relayed_message_gets_the_owners_answer_and_a_released_session_is_gone(
    redis: RedisServer,
) -> None:
    owner, poster = SessionBus(settings(redis)), SessionBus(settings(redis))

    async def answer(envelope: Envelope) -> HttpReply:
        return HttpReply(202, envelope.client_id.encode(), b"text/plain")

    owner.serve("sse", answer)
    await owner.start()
    await poster.start()
    try:
        await owner.claim("sse", "s2")
        relayed = await poster.relay(ping("s2"))
        assert relayed.outcome == "answered" and relayed.reply is not None
        assert (relayed.reply.status, relayed.reply.body) == (202, b"client-a")
        await owner.release("sse", "s2")
        assert (await poster.relay(ping("s2"))).outcome == "gone"
    finally:
        await poster.stop()
        await owner.stop()


async def test_a_claim_lapses_after_its_ttl_when_its_replica_stops_beating(redis: RedisServer) -> None:
    owner, poster = SessionBus(settings(redis)), SessionBus(settings(redis))
    await owner._connect()  # announced once, no beat loop: like a replica that died
    await owner.claim("sse", "s3")
    await poster.start()
    try:
        await asyncio.sleep(1.3)  # MCP_SESSION_BUS_TTL_S=1
        assert (await poster.relay(ping("s3"))).outcome == "gone"
    finally:
        await poster.stop()
        await owner.stop()


async def test_a_bus_that_cannot_be_reached_fails_relays_at_once() -> None:
    unreachable = ServerSettings.model_validate(
        {"session_bus_url": "redis://127.0.0.1:9/0", "session_bus_timeout_s": 0.3}
    )
    bus = SessionBus(unreachable)
    await bus.start()
    try:
        relayed = await asyncio.wait_for(bus.relay(ping("s4")), 0.5)
        assert relayed.outcome == "unavailable"
        assert (await bus.check()).status == "down"
    finally:
        await bus.stop()


def test_a_bus_url_that_is_not_redis_is_refused() -> None:
    with pytest.raises(ValueError, match="redis:// or rediss://"):
        ServerSettings.model_validate({"session_bus_url": "http://cache:6379"})


def test_without_the_setting_the_app_never_imports_redis() -> None:
    script = (
        "import sys\n"
        "from libmcp.app import create_app\nfrom libmcp.server import Server\n"
        "from services.filesystem.service import service\n"
        "create_app(Server(service))\n"
        "assert not any(name == 'redis' or name.startswith('redis.') for name in sys.modules), 'redis'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
