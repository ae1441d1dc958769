"""The session bus: who owns session X, and deliver a message to its owner, over Redis 7 or Valkey.

A session (the 2024-11-05 SSE stream today) lives in the replica holding its stream. With
``MCP_SESSION_BUS_URL`` set, each replica claims its sessions in Redis (``mcp:<kind>:<id>`` holds the
owner's replica id, with a TTL of ``MCP_SESSION_BUS_TTL_S`` renewed every third of it while the
replica lives) and serves a per-replica inbox; a message that lands on another replica is relayed:

1. :meth:`SessionBus.relay` runs one script: no claim, or a claim whose replica has stopped beating
   -> ``gone`` (the caller answers 404 at once); more than ``MCP_SESSION_BUS_QUEUE_MESSAGES`` waiting
   for that session -> ``full`` (429); else the message goes on the owner's inbox list.
2. The owner's receive loop takes it and runs it through the handler registered for its kind (the same
   path as a local post, the poster's ``client_id`` carried and checked there), and sends the handler's
   HTTP answer back on the relaying replica's ack list.
3. The relaying replica answers its client with that answer. So a 202 means the owner holds the
   message: nothing accepted is lost, even if Redis restarts the next moment. A message the owner did
   not take within ``MCP_SESSION_BUS_ACK_TIMEOUT_S`` is taken back off its inbox and refused (503).

When Redis is unreachable the bus reports itself down (``/health``: check ``session_bus``), relays fail
fast (503, ``Retry-After``) and a reconnect loop with bounded backoff re-claims every local session
when Redis answers again. Local sessions never need the bus.

The API is not SSE-specific: :meth:`claim`/:meth:`release` (ownership), :meth:`relay` (deliver to the
owner) and :meth:`serve` (the handler of one kind) are keyed by a ``kind`` so another stateful
transport (a stateful ``/mcp`` mode, task state) can reuse the same bus with its own kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from libmcp.config import ServerSettings
from libmcp.http import HttpReply
from libmcp.service import CheckResult

logger = logging.getLogger("libmcp.session_bus")

PREFIX = "mcp:"
# How long an ack waits in Redis for the replica that asked; it normally takes it within milliseconds.
ACK_TTL_MS = 60_000
RECONNECT_BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0)
# One BLPOP waits this long: the loop notices shutdown and a dead connection within it.
RECEIVE_BLOCK_S = 1.0


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message relayed to the replica that owns ``session_id``, with who sent it."""

    kind: str
    session_id: str
    client_id: str
    body: bytes
    traceparent: str | None


Handler = Callable[[Envelope], Awaitable[HttpReply]]
Outcome = Literal["answered", "gone", "full", "unavailable", "not_taken"]


@dataclass(frozen=True, slots=True)
class Relayed:
    """What became of a relayed message: the owner's answer, or why there is none."""

    outcome: Outcome
    reply: HttpReply | None = None
    detail: str = ""


# KEYS: the session's claim, its waiting count. ARGV: count cap, TTL ms, envelope, key prefix.
_RELAY = """
local owner = redis.call('GET', KEYS[1])
if not owner then return {0, ''} end
if redis.call('EXISTS', ARGV[4] .. 'replica:' .. owner) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {0, ''}
end
local waiting = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if waiting > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[2])
  return {2, owner}
end
redis.call('RPUSH', ARGV[4] .. 'inbox:' .. owner, ARGV[3])
return {1, owner}
"""


def _frame(header: dict[str, Any], body: bytes) -> bytes:
    return orjson.dumps(header) + b"\n" + body


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _unframe(data: bytes) -> tuple[dict[str, Any], bytes]:
    header, _, body = data.partition(b"\n")
    decoded: dict[str, Any] = orjson.loads(header)
    return decoded, body


class SessionBus:
    """One replica's side of the bus: its claims, its inbox, and the relays it is waiting on."""

    def __init__(self, settings: ServerSettings, replica_id: str | None = None) -> None:
        self.settings = settings
        self.replica_id = replica_id or secrets.token_hex(8)
        self.ttl_ms = int(settings.session_bus_ttl_s * 1000)
        options: dict[str, Any] = {
            "socket_connect_timeout": settings.session_bus_timeout_s,
            "socket_timeout": settings.session_bus_timeout_s,
            "retry_on_timeout": False,
        }
        if settings.session_bus_password:
            options["password"] = settings.session_bus_password
        self.redis: aioredis.Redis = aioredis.Redis.from_url(settings.session_bus_url, **options)
        # BLPOP blocks for RECEIVE_BLOCK_S: its own client, with a socket timeout past the block.
        blocking = {**options, "socket_timeout": RECEIVE_BLOCK_S + settings.session_bus_timeout_s}
        self.receiver: aioredis.Redis = aioredis.Redis.from_url(settings.session_bus_url, **blocking)
        self.up = False
        self.last_error = "not connected yet"
        self.owned: dict[str, set[str]] = {}
        self.handlers: dict[str, Handler] = {}
        self._waiting: dict[str, asyncio.Future[HttpReply]] = {}
        self._relay = self.redis.register_script(_RELAY)
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()

    # Life cycle -------------------------------------------------------------------------------

    def serve(self, kind: str, handler: Handler) -> None:
        """Run ``handler`` for every message relayed to a session of ``kind`` this replica owns."""
        self.handlers[kind] = handler

    async def start(self) -> None:
        """Start the receive and keep-alive loops; a bus that is down at start-up is retried, not fatal."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._receive_loop()), loop.create_task(self._beat_loop())]
        # A moment for the first connection, so sessions opened right after start-up are claimed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), self.settings.session_bus_timeout_s)

    async def stop(self) -> None:
        """Release this replica's claims and stop the loops."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await task
        self._fail_waiting("the service is shutting down")
        if self.up:
            keys = [self._claim_key(kind, sid) for kind, ids in self.owned.items() for sid in ids]
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await self.redis.delete(self._replica_key(self.replica_id), *keys)
        self.up = False
        for client in (self.redis, self.receiver):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def check(self) -> CheckResult:
        """The bus as ``/health`` reports it."""
        if not self.up:
            return CheckResult("down", f"session bus unreachable: {self.last_error}")
        try:
            await self.redis.ping()
        except (RedisError, OSError) as error:
            self._went_down(error)
            return CheckResult("down", f"session bus unreachable: {self.last_error}")
        return CheckResult("ok", f"replica {self.replica_id}, {self.owned_count()} sessions claimed")

    def owned_count(self) -> int:
        return sum(len(ids) for ids in self.owned.values())

    # Ownership --------------------------------------------------------------------------------

    async def claim(self, kind: str, session_id: str) -> bool:
        """Record that this replica owns a session; ``False`` when the bus could not be told (the
        session then works only on this replica until the next keep-alive beat claims it)."""
        self.owned.setdefault(kind, set()).add(session_id)
        if not self.up:
            return False
        try:
            await self.redis.set(self._claim_key(kind, session_id), self.replica_id, px=self.ttl_ms)
        except (RedisError, OSError) as error:
            self._went_down(error)
            return False
        return True

    async def release(self, kind: str, session_id: str) -> None:
        """Forget a session this replica owned: relays to it answer 404 from now on."""
        ids = self.owned.get(kind)
        if ids is not None:
            ids.discard(session_id)
        if not self.up:
            return
        key = self._claim_key(kind, session_id)
        try:
            await self.redis.delete(key, key + ":waiting")
        except (RedisError, OSError) as error:
            self._went_down(error)

    # Relaying ---------------------------------------------------------------------------------

    async def relay(self, envelope: Envelope) -> Relayed:
        """Deliver a message to the replica owning its session and return that replica's answer."""
        if not self.up:
            return Relayed("unavailable", detail=self.last_error)
        message_id = secrets.token_hex(8)
        header = {
            "m": message_id,
            "r": self.replica_id,
            "k": envelope.kind,
            "s": envelope.session_id,
            "c": envelope.client_id,
            "t": envelope.traceparent,
        }
        framed = _frame(header, envelope.body)
        claim = self._claim_key(envelope.kind, envelope.session_id)
        answer: asyncio.Future[HttpReply] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = answer
        try:
            try:
                code, owner = await self._relay(
                    keys=[claim, claim + ":waiting"],
                    args=[self.settings.session_bus_queue_messages, self.ttl_ms, framed, PREFIX],
                )
            except (RedisError, OSError) as error:
                self._went_down(error)
                return Relayed("unavailable", detail=self.last_error)
            if code == 0:
                return Relayed("gone")
            if code == 2:
                return Relayed("full")
            try:
                return Relayed(
                    "answered",
                    await asyncio.wait_for(answer, self.settings.session_bus_ack_timeout_s),
                )
            except TimeoutError:
                return await self._take_back(owner, claim, framed)
            except ConnectionError as error:
                return Relayed("unavailable", detail=str(error))
        finally:
            self._waiting.pop(message_id, None)

    async def _take_back(self, owner: bytes | str, claim: str, framed: bytes) -> Relayed:
        owner_id = owner.decode() if isinstance(owner, bytes) else owner
        try:
            removed = await self.redis.lrem(self._inbox_key(owner_id), 1, framed)  # type: ignore[arg-type]
            if removed:
                await self.redis.decr(claim + ":waiting")
        except (RedisError, OSError) as error:
            self._went_down(error)
            return Relayed("unavailable", detail=self.last_error)
        if removed:
            return Relayed("not_taken", detail="it was taken back off the queue: sending it again is safe")
        return Relayed("not_taken", detail="its replica took it but did not confirm: it may have been run")

    # Loops ------------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        inbox, acks = self._inbox_key(self.replica_id), self._acks_key(self.replica_id)
        failures = 0
        while True:
            if not self.up:
                try:
                    await self._connect()
                    failures = 0
                except (RedisError, OSError) as error:
                    self._went_down(error)
                    await asyncio.sleep(RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S) - 1)])
                    failures += 1
                    continue
            try:
                popped = await self.receiver.blpop([inbox, acks], timeout=RECEIVE_BLOCK_S)
                if popped is None:
                    continue
                key, data = (_as_bytes(part) for part in popped)
                if key == acks.encode():
                    self._acked(data)
                else:
                    await self._deliver(data)
            except (RedisError, OSError) as error:
                self._went_down(error)

    async def _connect(self) -> None:
        """Reach Redis, announce this replica and (re)claim every session it holds."""
        await self.redis.ping()
        async with self.redis.pipeline(transaction=False) as pipe:
            self._queue_beat(pipe)
            await pipe.execute()
        if not self.up:
            logger.info("session bus connected", extra={"fields": {"replica": self.replica_id}})
        self.up = True
        self._connected.set()

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.session_bus_ttl_s / 3)
            if not self.up:
                continue
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    self._queue_beat(pipe)
                    await pipe.execute()
            except (RedisError, OSError) as error:
                self._went_down(error)

    def _queue_beat(self, pipe: Any) -> None:
        pipe.set(self._replica_key(self.replica_id), "1", px=self.ttl_ms)
        for kind, ids in self.owned.items():
            for session_id in ids:
                pipe.set(self._claim_key(kind, session_id), self.replica_id, px=self.ttl_ms)

    async def _deliver(self, data: bytes) -> None:
        header, body = _unframe(data)
        kind, session_id = header["k"], header["s"]
        with contextlib.suppress(RedisError, OSError):
            await self.redis.decr(self._claim_key(kind, session_id) + ":waiting")
        handler = self.handlers.get(kind)
        envelope = Envelope(kind, session_id, header["c"], body, header.get("t"))
        if handler is None:
            reply = HttpReply(404, orjson.dumps({"error": f"no {kind} sessions on this replica"}))
        else:
            try:
                reply = await handler(envelope)
            except Exception:
                logger.exception("a relayed message failed on its owner")
                reply = HttpReply(500, orjson.dumps({"error": "the session's replica failed on the message"}))
        ack = _frame(
            {
                "m": header["m"],
                "s": reply.status,
                "t": (reply.media_type or b"").decode("latin-1"),
                "h": [[key.decode("latin-1"), value.decode("latin-1")] for key, value in reply.headers],
            },
            reply.body,
        )
        acks = self._acks_key(header["r"])
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(acks, ack)
            pipe.pexpire(acks, ACK_TTL_MS)
            await pipe.execute()

    def _acked(self, data: bytes) -> None:
        header, body = _unframe(data)
        answer = self._waiting.get(header["m"])
        if answer is None or answer.done():
            return
        headers = tuple((bytes(key, "latin-1"), bytes(value, "latin-1")) for key, value in header["h"])
        media_type = header["t"].encode() or None
        answer.set_result(HttpReply(header["s"], body, media_type, headers))

    def _went_down(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        if self.up:
            logger.warning("session bus down", extra={"fields": {"detail": self.last_error}})
        self.up = False
        self._fail_waiting(f"the session bus went down: {self.last_error}")

    def _fail_waiting(self, reason: str) -> None:
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(ConnectionError(reason))

    # Keys -------------------------------------------------------------------------------------

    @staticmethod
    def _claim_key(kind: str, session_id: str) -> str:
        return f"{PREFIX}{kind}:{session_id}"

    @staticmethod
    def _replica_key(replica_id: str) -> str:
        return f"{PREFIX}replica:{replica_id}"

    @staticmethod
    def _inbox_key(replica_id: str) -> str:
        return f"{PREFIX}inbox:{replica_id}"

    @staticmethod
    def _acks_key(replica_id: str) -> str:
        return f"{PREFIX}acks:{replica_id}"
