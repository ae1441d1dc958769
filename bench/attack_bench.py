"""The services under hostile load: each attack class of issue 16 against the real service it targets,
with a well-behaved client beside it.

    .venv/bin/python -m bench.attack_bench [--seconds 4] [--only CLASS ...] [--json out.json]

For every class the targeted service runs as ``mcp-sse serve NAME`` (a child process, started with
bench/service_bench.py's workloads and bench/transport_bench.py's ``process``) with its default settings
plus only what the attack needs to exist at all (a database, a root, fetch allowed to reach the loopback
page server, a rate limit to get past). A well-behaved client (``--probe``, its own process, so that the
attacker's work does not delay it) calls ``/health`` and a cheap ``tools/call`` over ``/mcp`` at a steady
rate: first for the attack's window with no attack (the baseline), then while this process runs the
attack. The service's RSS is sampled every 50 ms; after the attack it is sampled until it is back within
``RSS_MARGIN_MB`` of the idle RSS, for at most ``SETTLE_S``.

The attacker connects from 127.0.0.1 and the well-behaved client from 127.0.0.2: per-client limits keyed
by the peer address tell them apart, and uvicorn trusts forwarding headers from 127.0.0.1 only, which the
spoofing attack needs. Every loop is bounded in count and in time, every socket goes to 127.0.0.0/8, and an
attack stops early once the service passes ``VALVE_MB`` of RSS. A refusal (HTTP 408, 413, 429, 431, 503,
an ``isError`` result naming a limit) is a limit firing and is recorded as what the attacker got: it
never fails the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.loadgen import percentile, run_client
from bench.service_bench import PeakRss, Workload, backend, call_once, service_env, tree_rss, workloads
from bench.transport_bench import HEADERS, tool_call_body
from harness.http_client import Connection, HttpResponse
from harness.processes import HOST, REPO_ROOT, ServiceProcess, free_port
from libmcp.config import ServerSettings
from services.postgres.settings import PostgresSettings

ATTACKER = "127.0.0.1"
WELL_BEHAVED = "127.0.0.2"

# Targets of issue 16.
PEAK_RSS_TARGET_MB = 256.0
P99_TARGET_MS = 100.0
RSS_MARGIN_MB = 32.0  # "back to baseline": within this much of the idle RSS measured before the baseline

SETTLE_S = 5.0  # longest wait for RSS to come back after an attack
VALVE_MB = 4096.0  # an attack stops sending once the service's RSS passes this
PROBE_RATE_HZ = 20.0  # /health and tools/call each, per second
PROBE_TIMEOUT_S = 10.0  # one request of the well-behaved client; a timeout counts as a failure
KEEP = 65_536  # bytes kept from each end of a reply, to classify it without holding it whole

POOL_SIZE = PostgresSettings.model_fields["postgres_pool_max_size"].default
DEFAULTS = ServerSettings.model_validate({})  # the defaults, whatever this environment sets


# Raw HTTP ---------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What one request got: a status, or ``failure`` (closed, reset, timeout) when no answer came."""

    status: int | None
    failure: str = ""
    length: int = 0
    head: bytes = b""
    tail: bytes = b""
    seconds: float = 0.0
    complete: bool = False  # the whole body is in ``head``

    def says(self, needle: bytes) -> bool:
        return needle in self.head or needle in self.tail

    def kind(self) -> str:
        """What a tool call got, for counting: ``HTTP 413: ...``, ``isError: ...``, ``result, truncated``."""
        return tool_kind(self) if self.status == 200 else self.status_kind()

    def status_kind(self) -> str:
        """``HTTP 431`` with the refusal's message, or what happened instead of an answer."""
        if self.status is None:
            return self.failure
        message = refusal_message(self) if self.status != 200 else ""
        return f"HTTP {self.status}" + (f": {message}" if message else "")


def tool_kind(reply: Reply) -> str:
    """A 200's JSON-RPC answer: a result (truncated or not), an ``isError`` with its message, an error."""
    message = ""
    if reply.complete and reply.length < 2**20:
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError, AttributeError):
            answer = json.loads(reply.head)
            answers = answer if isinstance(answer, list) else [answer]
            first = answers[0]
            if "error" in first:
                message = f"JSON-RPC error {first['error']['code']}: {first['error']['message']}"
            elif first.get("result", {}).get("isError"):
                message = "isError: " + first["result"]["content"][0]["text"]
    if message:
        return _short(message)
    if reply.says(b'"isError":true'):
        return "isError"
    if reply.says(b'"error":{'):
        return "JSON-RPC error"
    size = f" of {reply.length / 2**20:,.1f} MiB" if reply.length >= 2**20 else ""
    kind = f"result{size}, truncated" if reply.says(b'"truncated":true') else f"result{size}"
    named = sorted({m.decode() for part in (reply.head, reply.tail) for m in SETTING.findall(part)})
    return kind + (f", names {', '.join(named)}" if named else "")


def structured(reply: Reply) -> dict[str, Any]:
    """The ``structuredContent`` of a complete tool-call answer, else ``{}``."""
    if not reply.complete:
        return {}
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        content = json.loads(reply.head).get("result", {}).get("structuredContent")
        return content if isinstance(content, dict) else {}
    return {}


def refusal_message(reply: Reply) -> str:
    """The message of a refusal's body (``{"error": "..."}``, a JSON-RPC error, or text), shortened."""
    if not reply.complete or not reply.head:
        return ""
    try:
        body = json.loads(reply.head)
    except ValueError:
        return _short(reply.head.decode("utf-8", "replace"))
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return _short(str(error)) if error else ""


SETTING = re.compile(rb"\b(?:MCP|POSTGRES|FILESYSTEM|FETCH)_[A-Z_]+[A-Z]\b")


def _short(text: str, limit: int = 110) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


async def connect(port: int, source: str = ATTACKER, rcvbuf: int | None = None) -> Connection:
    """An open keep-alive connection to the service from ``source`` (an address in 127.0.0.0/8)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (HOST, port)), 5)
    except BaseException:
        sock.close()
        raise
    connection = Connection(HOST, port)
    connection.reader, connection.writer = await asyncio.open_connection(sock=sock, limit=2**20)
    return connection


async def read_reply(connection: Connection, within_s: float) -> Reply:
    """Read one answer, keeping only ``KEEP`` bytes from each end of its body; never raises."""
    assert connection.reader is not None
    reader = connection.reader
    started = time.monotonic()
    reply = Reply(None)
    try:
        async with asyncio.timeout(max(0.01, within_s)):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            reply.status = int(status_line.split()[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
            remaining = int(headers.get("content-length", "-1"))
            while remaining != 0:
                chunk = await reader.read(min(2**20, remaining) if remaining > 0 else 2**20)
                if not chunk:
                    break
                if len(reply.head) < KEEP:
                    reply.head += chunk[: KEEP - len(reply.head)]
                reply.tail = (reply.tail + chunk)[-KEEP:]
                reply.length += len(chunk)
                remaining -= len(chunk) if remaining > 0 else 0
            reply.complete = reply.length <= KEEP
    except TimeoutError:
        reply.failure = "no answer (timeout)" if reply.status is None else reply.failure
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        reply.failure = "closed without an answer"
    except (OSError, ValueError, IndexError):
        reply.failure = "connection error"
    reply.seconds = time.monotonic() - started
    return reply


def request_bytes(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(
    port: int, parts: Iterable[bytes], *, deadline: float, answer_s: float = 5.0
) -> tuple[Reply, int]:
    """Send ``parts`` on a new connection until the server answers or ``deadline``; returns the answer
    (waited for up to ``answer_s`` after the sending stopped) and the bytes the server took."""
    try:
        connection = await connect(port)
    except (OSError, TimeoutError) as exc:
        return Reply(None, f"connect failed ({type(exc).__name__})"), 0
    assert connection.writer is not None
    answer = asyncio.create_task(read_reply(connection, deadline - time.monotonic() + answer_s))
    sent = 0
    try:
        for part in parts:
            if answer.done() or time.monotonic() > deadline:
                break
            connection.writer.write(part)
            await asyncio.wait_for(connection.writer.drain(), max(0.01, deadline - time.monotonic()))
            sent += len(part)
    except (OSError, TimeoutError):
        pass
    if not answer.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(answer), answer_s)
    if not answer.done():
        answer.cancel()
        reply = Reply(None, "no answer (timeout)")
    else:
        reply = answer.result()
    await connection.close()
    return reply, sent


async def post(
    port: int, path: str, body: bytes, within_s: float, headers: dict[str, str] | None = None
) -> Reply:
    """One POST on its own connection."""
    reply, _ = await exchange(
        port,
        [request_bytes("POST", path, body, {**HEADERS, **(headers or {})})],
        deadline=time.monotonic() + within_s,
        answer_s=within_s,
    )
    return reply


def rpc_call(tool: str, arguments: dict[str, Any], request_id: int = 1) -> bytes:
    return tool_call_body(iter([request_id]), tool, arguments)


async def open_sse(
    port: int, rcvbuf: int | None = None, within_s: float = 5.0
) -> tuple[Connection, int, str]:
    """``GET /sse``: the connection, its status and (on 200) the endpoint to post to."""
    connection = await connect(port, rcvbuf=rcvbuf)
    status = await asyncio.wait_for(connection.open_stream("/sse"), within_s)
    endpoint = ""
    if status == 200:
        _, endpoint = await asyncio.wait_for(connection.read_event(), within_s)
    return connection, status, endpoint


# What the attacker got --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the attacker got (answers counted by kind), facts worth a line, and whether a limit fired."""

    got: dict[str, int] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)
    limit_fired: bool = False

    def count(self, kind: str, times: int = 1) -> None:
        self.got[kind] = self.got.get(kind, 0) + times


LIMIT_STATUSES = (400, 403, 404, 408, 413, 429, 431, 503)
LIMIT_WORDS = ("MCP_", "POSTGRES_", "FILESYSTEM_", "FETCH_", "limit", "Busy")


def refused(kind: str) -> bool:
    """A kind of answer that shows a limit at work: a refusal status, or an error naming a limit."""
    status = re.search(r"HTTP (\d{3})", kind)
    return (status is not None and int(status[1]) in LIMIT_STATUSES) or any(
        word in kind for word in LIMIT_WORDS
    )


# The attacks ------------------------------------------------------------------------------------------


@dataclass
class Target:
    """The service under attack, as an attack sees it."""

    port: int
    seconds: float
    rss: PeakRss
    root: Path | None = None
    page_url: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def over_valve(self) -> bool:
        return self.rss.peak_mb > VALVE_MB


async def header_flood(target: Target) -> Outcome:
    """One header line that never ends, then 200,000 header lines, each on its own connection; again
    while the window lasts (at most 50 rounds)."""
    outcome = Outcome()
    chunk = b"a" * 65_536

    def endless() -> Iterator[bytes]:
        yield b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: "
        for _ in range(128 * 2**20 // len(chunk)):  # 128 MiB at most
            if target.over_valve():
                return
            yield chunk

    lines = b"".join(b"X-Flood-%d: v\r\n" % n for n in range(200_000))
    many = [b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"]
    many += [lines[i : i + 65_536] for i in range(0, len(lines), 65_536)] + [b"\r\n"]
    taken: dict[str, int] = {}
    for round_number in range(50):
        if round_number and target.left() <= 0:
            break
        for label, parts in (("endless header line", endless()), ("200,000 header lines", iter(many))):
            deadline = time.monotonic() + target.seconds / 2
            if round_number:
                deadline = min(target.deadline, deadline)
            reply, sent = await exchange(target.port, parts, deadline=deadline, answer_s=1.0)
            outcome.count(f"{label}: {reply.status_kind()}")
            taken[label] = max(taken.get(label, 0), sent)
    for label, sent in taken.items():
        outcome.facts.append(
            f"{label}: the attacker got at most {sent / 2**20:,.1f} MiB out (socket buffers included) "
            f"before the answer or the end of its attempt ({target.seconds / 2:g} s)"
        )
    outcome.limit_fired = any("HTTP 431" in kind for kind in outcome.got)
    return outcome


async def slowloris(target: Target) -> Outcome:
    """512 connections from one client: half never finish their head, half never finish their body,
    each sending one more byte a second for the whole window."""
    outcome = Outcome()
    gate = asyncio.Semaphore(64)
    closes: dict[str, list[float]] = {}

    async def hold(kind: str, opening: bytes) -> None:
        async with gate:
            try:
                connection = await connect(target.port)
            except (OSError, TimeoutError):
                outcome.count(f"{kind}: connect failed")
                return
        assert connection.writer is not None
        connection.writer.write(opening)
        answer = asyncio.create_task(read_reply(connection, target.left() + 1))
        while not answer.done() and time.monotonic() < target.deadline:
            await asyncio.wait({answer}, timeout=1.0)
            if not answer.done():
                with contextlib.suppress(OSError):
                    connection.writer.write(b"a")
        if answer.done():
            reply = answer.result()
            outcome.count(f"{kind}: {reply.status_kind()}")
            closes.setdefault(f"{kind}: {reply.status_kind()}", []).append(time.monotonic() - target.started)
        else:
            answer.cancel()
            outcome.count(f"{kind}: still open at the end")
        await connection.close()

    head = b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    body = (
        b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100000\r\n\r\n{"jsonrpc":'
    )
    # interleaved, so that a per-client connection cap refuses some of each kind
    tasks = [
        hold(*kind) for _ in range(256) for kind in (("unfinished head", head), ("unfinished body", body))
    ]
    await asyncio.gather(*tasks)
    for kind, times in sorted(closes.items()):
        label, answer = kind.split(": ", 1)
        outcome.facts.append(f"{label}: {answer[:8]} {min(times):.1f}-{max(times):.1f} s into the attack")
    outcome.facts.append(
        f"held {target.seconds:.0f} s; defaults MCP_HEADER_TIMEOUT_S={DEFAULTS.header_timeout_s:g}, "
        f"MCP_BODY_TIMEOUT_S={DEFAULTS.body_timeout_s:g}, "
        f"MCP_MAX_CONNECTIONS_PER_CLIENT={DEFAULTS.max_connections_per_client}"
    )
    outcome.limit_fired = any(refused(kind) for kind in outcome.got)
    return outcome


def tools_list_batch(max_bytes: int) -> bytes:
    """A JSON-RPC batch of tools/list requests just under ``max_bytes``."""
    entries = []
    size = 2
    for number in itertools.count(1):
        entry = b'{"jsonrpc":"2.0","id":%d,"method":"tools/list"}' % number
        if size + len(entry) + 1 > max_bytes:
            break
        entries.append(entry)
        size += len(entry) + 1
    return b"[" + b",".join(entries) + b"]"


async def batch_amplification(target: Target) -> Outcome:
    """A tools/list batch as large as MCP_MAX_BODY_BYTES allows, on /rpc and on /mcp (2025-03-26),
    alternately while the window lasts (each at least once, 8 in all at most)."""
    outcome = Outcome()
    batch = tools_list_batch(DEFAULTS.max_body_bytes - 1024)
    count = batch.count(b"tools/list")
    largest: dict[str, Reply] = {}
    for sent in range(8):
        if sent >= 2 and (target.left() <= 0 or target.over_valve()):
            break
        path = ("/rpc", "/mcp")[sent % 2]
        reply = await post(target.port, path, batch, 60.0, {"MCP-Protocol-Version": "2025-03-26"})
        kind = reply.kind() if reply.status != 200 else f"HTTP 200, {reply.length / 2**20:,.1f} MiB reply"
        outcome.count(f"{path}: {kind}")
        if path not in largest or reply.length > largest[path].length:
            largest[path] = reply
        outcome.limit_fired |= reply.status in LIMIT_STATUSES or (
            reply.status == 200 and reply.length <= DEFAULTS.max_reply_bytes
        )
    for path, reply in largest.items():
        outcome.facts.append(
            f"{path}: a {len(batch) / 2**20:.2f} MiB batch of {count:,} tools/list got at most "
            f"{reply.length:,} bytes back ({reply.length / len(batch):,.2f}x the request) in "
            f"{reply.seconds:.1f} s"
        )
    return outcome


SSE_FILE = "sse-answer.txt"  # read_file of it answers ~91 KiB (the text twice: content and structuredContent)


async def sse_non_reader(target: Target) -> Outcome:
    """An SSE client that never reads its stream and keeps posting read_file calls with ~91 KiB answers."""
    outcome = Outcome()
    stream, status, endpoint = await open_sse(target.port, rcvbuf=4096)
    if status != 200:
        outcome.count(f"GET /sse: HTTP {status}")
        await stream.close()
        return outcome
    body = rpc_call("read_file", {"path": SSE_FILE})
    poster: Connection | None = None
    posts = 0
    while posts < 2000 and time.monotonic() < target.deadline and not target.over_valve():
        posts += 1
        try:
            if poster is None:
                poster = await connect(target.port)
            response = await asyncio.wait_for(poster.request("POST", endpoint, body, HEADERS), 10)
            outcome.count(f"POST /messages: HTTP {response.status}")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            outcome.count("POST /messages: closed without an answer")
            if poster is not None:
                await poster.close()
            poster = None
    if poster is not None:
        await poster.close()
    seen, ended, text = await _drain(stream, 3.0, 64 * 2**20)
    named = "MCP_SSE_OUTBOX_BYTES" in text
    outcome.facts.append(
        f"{posts} posts in {time.monotonic() - target.started:.1f} s; then the stream held "
        f"{seen / 2**20:,.1f} MiB for the client; "
        f"{'the server had ended it' if ended else 'still open'}"
        f"{', its last event names MCP_SSE_OUTBOX_BYTES' if named else ''}"
    )
    outcome.count("stream ended by the server" if ended else "stream still open")
    outcome.limit_fired = ended or named or any(refused(kind) for kind in outcome.got)
    await stream.close()
    return outcome


async def _drain(connection: Connection, seconds: float, cap: int) -> tuple[int, bool, str]:
    """Read a stream for up to ``seconds``: bytes read, whether it ended, the text of its last 4 KiB."""
    assert connection.reader is not None
    seen, tail, ended = 0, b"", False
    stop = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError, OSError):
        while seen < cap and time.monotonic() < stop:
            chunk = await asyncio.wait_for(connection.reader.read(2**20), stop - time.monotonic())
            if not chunk:
                ended = True
                break
            seen += len(chunk)
            tail = (tail + chunk)[-4096:]
            if tail.endswith(b"\r\n0\r\n\r\n"):  # the last chunk: the response is over
                ended = True
                break
    return seen, ended, tail.decode("utf-8", "replace")


async def sse_session_flood(target: Target) -> Outcome:
    """1,500 idle SSE sessions from one client, opened 100 at a time and held for the window."""
    outcome = Outcome()
    gate = asyncio.Semaphore(100)
    streams: list[Connection] = []

    async def one() -> None:
        async with gate:
            if time.monotonic() > target.deadline:
                outcome.count("not tried (window over)")
                return
            try:
                connection, status, _ = await open_sse(target.port)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                outcome.count("GET /sse: closed without an answer")
                return
            outcome.count(f"GET /sse: HTTP {status}")
            if status == 200:
                streams.append(connection)
            else:
                await connection.close()

    await asyncio.gather(*(one() for _ in range(1500)))
    outcome.facts.append(f"{len(streams)} of 1,500 sessions open at once")
    await asyncio.sleep(max(0.0, target.left()))
    await asyncio.gather(*(stream.close() for stream in streams))
    outcome.limit_fired = any(refused(kind) for kind in outcome.got)
    return outcome


async def huge_sql(target: Target) -> Outcome:
    """``SELECT repeat('x', 200000000)`` once, then four at once, then 3,000 rows of 100 kB; each at least
    once, again while the window lasts (9 rounds at most)."""
    outcome = Outcome()
    huge = rpc_call("execute_sql", {"query": "SELECT repeat('x', 200000000) AS big"})
    rows = rpc_call(
        "execute_sql",
        {"query": "SELECT n, repeat('x', 100000) AS v FROM generate_series(1, 3000) n", "max_rows": 3000},
    )
    variants = (("one 200 MB value", huge, 1), ("four at once", huge, 4), ("3,000 rows of 100 kB", rows, 1))
    largest: dict[str, tuple[int, float]] = {}
    for index, (label, body, times) in enumerate(itertools.islice(itertools.cycle(variants), 9)):
        if index >= len(variants) and target.left() <= 0:
            break
        if target.over_valve():
            outcome.count(f"{label}: not sent (service RSS past {VALVE_MB:g} MB)")
            continue
        replies = await asyncio.gather(*(post(target.port, "/rpc", body, 60.0) for _ in range(times)))
        for reply in replies:
            outcome.count(f"{label}: {reply.kind()}")
        biggest, slowest = largest.get(label, (0, 0.0))
        largest[label] = (
            max(biggest, *(reply.length for reply in replies)),
            max(slowest, *(reply.seconds for reply in replies)),
        )
    for label, (biggest, slowest) in largest.items():
        outcome.facts.append(f"{label}: largest reply {biggest / 2**20:,.1f} MiB, slowest {slowest:.1f} s")
    outcome.limit_fired = all(
        refused(kind) or "truncated" in kind or "not sent" in kind for kind in outcome.got
    )
    return outcome


DEEP_JSON = "SELECT (repeat('[', 260) || repeat(']', 260))::jsonb AS deep"


async def deep_json(target: Target) -> Outcome:
    """A result nested 260 deep, over /rpc and /mcp (repeated through the window) and once over /sse."""
    outcome = Outcome()
    body = rpc_call("execute_sql", {"query": DEEP_JSON})
    sent = 0
    while sent < 40 and (sent < 2 or time.monotonic() < target.deadline):
        path = ("/rpc", "/mcp")[sent % 2]
        reply = await post(target.port, path, body, 10.0)
        outcome.count(f"{path}: {reply.kind()}")
        if sent == 0 and reply.status == 200:
            outcome.facts.append(f"the first answer: {_short(reply.head.decode('utf-8', 'replace'), 240)}")
        sent += 1
    try:
        stream, status, endpoint = await open_sse(target.port)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        outcome.count("/sse: stream not opened")
        return outcome
    if status == 200:
        reply = await post(target.port, endpoint, body, 10.0)
        try:
            _, data = await asyncio.wait_for(stream.read_event(), 5.0)
            answer = Reply(200, length=len(data), head=data.encode(), complete=True)
            outcome.count(f"/sse: {tool_kind(answer)}")
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            outcome.count(f"/sse: POST {reply.kind()}, then no answer on the stream in 5 s")
    else:
        outcome.count(f"/sse: GET HTTP {status}")
    await stream.close()
    outcome.limit_fired = not any("HTTP 500" in kind or "no answer" in kind for kind in outcome.got)
    return outcome


GLOB_TREE = "tree"
GLOB_TREE_ENTRIES = 4 + 16 + 64 + 256 + 256 * 6
COSTLY_SEGMENTS = 100  # about 1 s of matching per search over the tree before issue 16


def make_glob_tree(root: Path) -> int:
    """A tree of 4 x 4 x 4 x 4 directories with 6 files each under ``root/tree``; returns the entry count."""
    count = 0
    for a, b, c, d in itertools.product(range(4), repeat=4):
        directory = root / GLOB_TREE / f"a{a}" / f"b{b}" / f"c{c}" / f"d{d}"
        directory.mkdir(parents=True, exist_ok=True)
        for name in range(6):
            (directory / f"file{name}.txt").write_text("x\n")
        count += 6
    return count + 4 + 16 + 64 + 256  # == GLOB_TREE_ENTRIES


async def search_globs(target: Target) -> Outcome:
    """A pattern of 340 ``**`` segments, then eight expensive searches at once, then eight at once of a
    pattern an attacker fits within glob limits (8 ``**``, 64 alternatives); again while the window
    lasts (5 rounds at most)."""
    outcome = Outcome()
    deep = rpc_call("search_files", {"path": ".", "pattern": "/".join(["**"] * 340) + "/x"})
    costly = "/".join(["**"] * COSTLY_SEGMENTS) + "/*.nomatch"
    within = "/".join(["**"] * 8) + "/{" + ",".join(f"n{i}" for i in range(64)) + "}.nomatch"
    eights = {
        f"eight at once, {COSTLY_SEGMENTS} **": rpc_call(
            "search_files", {"path": GLOB_TREE, "pattern": costly}
        ),
        "eight at once, 8 ** x 64 alternatives": rpc_call(
            "search_files", {"path": GLOB_TREE, "pattern": within}
        ),
    }
    took: dict[str, list[float]] = {label: [] for label in eights}
    for round_number in range(5):
        if round_number and target.left() <= 0:
            break
        reply = await post(target.port, "/rpc", deep, 30.0)
        outcome.count(f"340 ** segments: {reply.kind()}")
        for label, body in eights.items():
            replies = await asyncio.gather(*(post(target.port, "/rpc", body, 40.0) for _ in range(8)))
            for reply in replies:
                outcome.count(f"{label}: {reply.kind()}")
            took[label] += [reply.seconds for reply in replies]
    for label, seconds in took.items():
        outcome.facts.append(
            f"{label} (over the {GLOB_TREE}/ tree of {GLOB_TREE_ENTRIES:,} entries): "
            f"{min(seconds):.1f}-{max(seconds):.1f} s each"
        )
    outcome.limit_fired = any(refused(kind) for kind in outcome.got) and not any(
        "Internal error" in kind or "HTTP 500" in kind for kind in outcome.got
    )
    return outcome


async def pool_hog(target: Target) -> Outcome:
    """Five ``pg_sleep`` calls at once from one client, each as long as the window."""
    outcome = Outcome()
    body = rpc_call("execute_sql", {"query": f"SELECT pg_sleep({target.seconds:.1f})"})
    replies = await asyncio.gather(*(post(target.port, "/rpc", body, target.seconds + 30) for _ in range(5)))
    for reply in replies:
        outcome.count(reply.kind())
    outcome.facts.append(
        f"five pg_sleep({target.seconds:.1f}) answered in {min(r.seconds for r in replies):.1f}-"
        f"{max(r.seconds for r in replies):.1f} s (POSTGRES_POOL_MAX_SIZE={POOL_SIZE} by default)"
    )
    # a limit that makes the extra calls wait for the caller's share also fires
    serialized = max(r.seconds for r in replies) >= 1.9 * target.seconds
    outcome.limit_fired = serialized or any(refused(kind) for kind in outcome.got)
    return outcome


BIG_PAGE_BYTES = 10_000_000


async def big_page(target: Target) -> Outcome:
    """fetch of a 10 MB HTML page from the loopback page server (again while the window lasts, at most 3)."""
    outcome = Outcome()
    body = rpc_call("fetch", {"url": target.page_url})
    for attempt in range(3):
        if attempt and time.monotonic() > target.deadline:
            break
        reply = await post(target.port, "/rpc", body, 60.0)
        outcome.count(reply.kind())
        fields = structured(reply)
        shown = {
            key: fields[key]
            for key in ("response_bytes", "body_truncated", "conversion_limited", "total_length")
            if key in fields
        }
        notes = [str(value) for key, value in fields.items() if "note" in key and value]
        outcome.facts.append(
            f"fetch of the 10 MB page {attempt + 1}: {reply.kind()} in {reply.seconds:.1f} s"
            + (f"; {', '.join(f'{k}={v}' for k, v in shown.items())}" if shown else "")
            + (f"; note: {_short(notes[0], 200)}" if notes else "")
        )
    # FETCH_MAX_RESPONSE_BYTES cuts the body, FETCH_MAX_CONVERT_BYTES the conversion.
    outcome.limit_fired = any(refused(kind) for kind in outcome.got) or any(
        "FETCH_" in f or "body_truncated=True" in f or "conversion_limited=True" in f for f in outcome.facts
    )
    return outcome


async def spoofed_forwarded_for(target: Target) -> Outcome:
    """tools/call as fast as answers come, each with a new forged ``X-Forwarded-For`` (8 connections)."""
    outcome = Outcome()
    numbers = itertools.count(1)

    async def worker() -> None:
        connection: Connection | None = None
        while time.monotonic() < target.deadline and (n := next(numbers)) <= 3000:
            spoof = {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}
            try:
                if connection is None:
                    connection = await connect(target.port)
                response = await asyncio.wait_for(
                    connection.request(
                        "POST", "/mcp", rpc_call("read_file", {"path": "bench.txt"}, n), {**HEADERS, **spoof}
                    ),
                    10,
                )
                outcome.count(
                    f"HTTP {response.status}" + (" isError" if b'"isError":true' in response.body else "")
                )
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                outcome.count("closed without an answer")
                if connection is not None:
                    await connection.close()
                connection = None
        if connection is not None:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(8)))
    outcome.limit_fired = outcome.got.get("HTTP 429", 0) > 0
    return outcome


@dataclass(frozen=True)
class AttackClass:
    name: str
    service: str
    what: str
    run: Callable[[Target], Coroutine[Any, Any, Outcome]]
    env: tuple[tuple[str, str], ...] = ()  # settings the attack needs to exist at all, beyond the workload's
    probe_call: tuple[str, dict[str, Any]] | None = None  # the cheap call, when not the workload's
    window_s: Callable[[float], float] = lambda seconds: seconds


RATE_LIMIT_ENV = (("MCP_RATE_LIMIT_PER_MINUTE", "3000"), ("MCP_RATE_LIMIT_BURST", "100"))

CLASSES = (
    AttackClass(
        "header_flood", "filesystem", "one never-ending header line, then 200,000 header lines", header_flood
    ),
    AttackClass(
        "slowloris",
        "filesystem",
        "512 connections from one client, half with unfinished heads, half with unfinished bodies, one "
        "byte a second each, held past MCP_HEADER_TIMEOUT_S and MCP_BODY_TIMEOUT_S",
        slowloris,
        window_s=lambda seconds: min(max(DEFAULTS.header_timeout_s, DEFAULTS.body_timeout_s) + 3.0, 40.0),
    ),
    AttackClass(
        "batch_amplification",
        "filesystem",
        "a JSON-RPC batch of tools/list as large as MCP_MAX_BODY_BYTES allows, on /rpc and /mcp",
        batch_amplification,
    ),
    AttackClass(
        "sse_non_reader",
        "filesystem",
        "an SSE client that never reads its stream and keeps posting read_file calls with ~91 KiB answers",
        sse_non_reader,
    ),
    AttackClass(
        "sse_session_flood", "filesystem", "1,500 idle SSE sessions from one client", sse_session_flood
    ),
    AttackClass(
        "huge_sql",
        "postgres",
        "SELECT repeat('x', 200000000) once and four at once, then 3,000 rows of 100 kB",
        huge_sql,
    ),
    AttackClass(
        "deep_json", "postgres", "a jsonb result nested 260 deep over /rpc, /mcp and /sse", deep_json
    ),
    AttackClass(
        "search_globs",
        "filesystem",
        "search_files with 340 ** segments, then eight expensive searches at once (100 ** segments; "
        "then 8 ** and 64 {a,b} alternatives, within the glob limits)",
        search_globs,
        # read_file of a small file does not use the worker threads the searches hold; this does
        probe_call=("list_directory", {"path": "."}),
    ),
    AttackClass("pool_hog", "postgres", "five pg_sleep calls at once from one client", pool_hog),
    AttackClass("big_page", "fetch", "fetch of a 10 MB HTML page for the service to convert", big_page),
    AttackClass(
        "spoofed_forwarded_for",
        "filesystem",
        "tools/call as fast as answers come, each with a forged X-Forwarded-For, against a rate limit",
        spoofed_forwarded_for,
        env=RATE_LIMIT_ENV,
    ),
)
CLASS_NAMES = tuple(attack.name for attack in CLASSES)


# The well-behaved client ------------------------------------------------------------------------------


@dataclass
class Latency:
    requests: int
    failed: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    failures: dict[str, int]


def latency(samples: list[float], failures: Counter[str]) -> Latency:
    ordered = sorted(samples)
    return Latency(
        requests=len(ordered),
        failed=sum(failures.values()),
        p50_ms=round(percentile(ordered, 0.50) * 1000, 2),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 2),
        max_ms=round((ordered[-1] if ordered else 0.0) * 1000, 2),
        failures=dict(failures),
    )


async def probe_loop(
    port: int,
    make_request: Callable[[], tuple[str, str, bytes]],
    ok: Callable[[HttpResponse], bool],
    stop: asyncio.Event,
    max_s: float,
) -> Latency:
    """One request every 1/PROBE_RATE_HZ s (never two at once, no catching up) on a keep-alive connection;
    a connection the server closed is opened again within the request's time, as HTTP clients do."""
    samples: list[float] = []
    failures: Counter[str] = Counter()
    connection: Connection | None = None

    async def once() -> str:
        nonlocal connection
        failure = ""
        for _ in range(2):
            try:
                if connection is None:
                    connection = await connect(port, WELL_BEHAVED)
                method, path, body = make_request()
                response = await connection.request(method, path, body, HEADERS)
                return "" if ok(response) else f"HTTP {response.status}"
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                failure = type(exc).__name__
                await connection.close() if connection is not None else None
                connection = None
        return failure

    next_at = time.perf_counter()
    end = next_at + max_s
    while not stop.is_set() and time.perf_counter() < end:
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        started = time.perf_counter()
        try:
            failure = await asyncio.wait_for(once(), PROBE_TIMEOUT_S)
        except TimeoutError:
            failure = "timeout"
            if connection is not None:
                await connection.close()
                connection = None
        samples.append(time.perf_counter() - started)
        if failure:
            failures[failure] += 1
        next_at = max(next_at + 1.0 / PROBE_RATE_HZ, time.perf_counter())
    if connection is not None:
        await connection.close()
    return latency(samples, failures)


async def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """The well-behaved client: /health and the cheap tools/call side by side until stdin closes."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def wait_for_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    port, tool, arguments = spec["port"], spec["tool"], spec["arguments"]
    counter = itertools.count(1)
    health = probe_loop(port, lambda: ("GET", "/health", b""), lambda r: r.status == 200, stop, spec["max_s"])
    call = probe_loop(
        port,
        lambda: ("POST", "/mcp", tool_call_body(counter, tool, arguments)),
        lambda r: r.status == 200 and b'"isError":false' in r.body,
        stop,
        spec["max_s"],
    )
    print("ready", flush=True)
    results = await asyncio.gather(health, call)
    return {"health": asdict(results[0]), "call": asdict(results[1])}


class Probe:
    """The well-behaved client in its own process: started, then stopped and read in ``__exit__``."""

    def __init__(self, port: int, workload: Workload, max_s: float = 300.0) -> None:
        self.spec = {"port": port, "tool": workload.tool, "arguments": workload.arguments, "max_s": max_s}
        self.result: dict[str, Any] = {}
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Probe:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.attack_bench", "--probe", json.dumps(self.spec)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        if not ready or self.process.stdout.readline().strip() != "ready":
            self._end()
            raise RuntimeError("the well-behaved client did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        try:
            # communicate() closes the client's stdin, which stops it
            output, _ = self.process.communicate(timeout=PROBE_TIMEOUT_S * 2 + 10)
        except subprocess.TimeoutExpired:
            self._end()
            raise RuntimeError("the well-behaved client did not stop") from None
        lines = output.strip().splitlines()
        self.result = json.loads(lines[-1]) if lines else {}

    def _end(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


def run_probe_for(port: int, workload: Workload, seconds: float) -> dict[str, Any]:
    with Probe(port, workload) as running:
        time.sleep(seconds)
    return running.result


# One class, all classes -------------------------------------------------------------------------------


@dataclass
class ClassResult:
    name: str
    service: str
    what: str
    tool: str
    arguments: dict[str, Any]
    settings: dict[str, str]
    window_s: float
    attack_s: float = 0.0
    idle_rss_mb: float = 0.0
    baseline_peak_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    rss_after_mb: float = 0.0
    settled_s: float = 0.0
    baseline: dict[str, Any] = field(default_factory=dict)
    under_attack: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def targets(self) -> dict[str, bool]:
        """Each target of issue 16 and whether this run met it (empty when the class did not run)."""
        if self.error or not self.under_attack:
            return {}
        return {
            "peak_rss": self.peak_rss_mb < PEAK_RSS_TARGET_MB,
            "rss_after": self.rss_after_mb <= self.idle_rss_mb + RSS_MARGIN_MB,
            "health_p99": self.under_attack["health"]["p99_ms"] < P99_TARGET_MS,
            "call_p99": self.under_attack["call"]["p99_ms"] < P99_TARGET_MS,
        }

    def as_dict(self) -> dict[str, Any]:
        """The fields, each target's verdict and the targets' values: the JSON form the report reads."""
        limits = {"peak_rss_mb": PEAK_RSS_TARGET_MB, "rss_margin_mb": RSS_MARGIN_MB, "p99_ms": P99_TARGET_MS}
        return asdict(self) | {"targets": self.targets(), "limits": limits, "settle_s": SETTLE_S}


def rss_mb(pid: int) -> float:
    return tree_rss(psutil.Process(pid)) / 2**20


def settle(pid: int, idle_mb: float) -> tuple[float, float]:
    """Wait up to SETTLE_S for RSS to come back within the margin; returns (RSS MB, seconds waited)."""
    started = time.monotonic()
    current = rss_mb(pid)
    while current > idle_mb + RSS_MARGIN_MB and time.monotonic() - started < SETTLE_S:
        time.sleep(0.25)
        current = rss_mb(pid)
    return round(current, 1), round(time.monotonic() - started, 2)


def run_class(attack: AttackClass, workload: Workload, seconds: float, page_url: str) -> ClassResult:
    """Start the service, measure the well-behaved client without and then with the attack."""
    if attack.probe_call is not None:
        workload = dataclasses.replace(workload, tool=attack.probe_call[0], arguments=attack.probe_call[1])
    env = service_env(workload, **dict(attack.env))
    env.pop("MCP_LOG_LEVEL", None)  # the default (INFO): refusals and call lines cost what they cost
    window = attack.window_s(seconds)
    shown = {key: _shown(key, value) for key, value in {**workload.env, **dict(attack.env)}.items()}
    result = ClassResult(
        attack.name, attack.service, attack.what, workload.tool, workload.arguments, shown, window
    )
    root = Path(workload.env["ALLOWED_PATHS"].rsplit(":", 1)[0]) if "ALLOWED_PATHS" in workload.env else None
    # The service writes its log as in production, to /dev/null: a flood logs a line per refusal.
    with ServiceProcess(attack.service, env, log_path=Path(os.devnull)) as service:
        port, pid = service.port, service.pid
        call_once(port, workload)
        time.sleep(0.5)
        result.idle_rss_mb = round(rss_mb(pid), 1)
        with PeakRss(pid) as rss:
            result.baseline = run_probe_for(port, workload, window)
        result.baseline_peak_rss_mb = round(rss.peak_mb, 1)
        with PeakRss(pid) as rss, Probe(port, workload) as running:
            started = time.monotonic()
            outcome = run_client(attack.run(Target(port, window, rss, root, page_url)))
            result.attack_s = round(time.monotonic() - started, 2)
            time.sleep(max(0.0, window - result.attack_s))  # the client is measured for the window at least
        result.peak_rss_mb = round(rss.peak_mb, 1)
        result.under_attack = running.result
        result.outcome = asdict(outcome)
        result.rss_after_mb, result.settled_s = settle(pid, result.idle_rss_mb)
    return result


def _shown(key: str, value: str) -> str:
    if key == "DATABASE_URL":
        return "<the bench's PostgreSQL>"
    if key == "ALLOWED_PATHS":
        return "<temporary directory>:ro"
    return value


def big_page_html() -> bytes:
    paragraph = (
        "<p>Paragraph {n} with a <a href='/link/{n}'>link</a>, <b>bold</b>, <i>italic</i> and "
        "<code>code</code> words, then a list:</p><ul><li>one {n}</li><li>two</li></ul>\n"
    )
    parts = ["<html><head><title>A big page</title></head><body><article><h1>Big</h1>"]
    size = len(parts[0])
    for n in itertools.count():
        part = paragraph.format(n=n)
        if size + len(part) > BIG_PAGE_BYTES - 30:
            break
        parts.append(part)
        size += len(part)
    return ("".join(parts) + "</article></body></html>").encode()


def big_page_server_command(port: int) -> list[str]:
    code = (
        "import threading\n"
        "from bench.attack_bench import big_page_html\n"
        "from harness.pageserver import PageServer, Reply\n"
        f"server = PageServer({HOST!r}, {port})\n"
        "server.routes['/big.html'] = Reply(headers={'Content-Type': 'text/html; charset=utf-8'},\n"
        "                                  body=big_page_html())\n"
        "server.routes['/'] = Reply(body=b'ok')\n"
        "with server.running():\n"
        "    server.requests = type('Forget', (list,), {'append': lambda self, item: None})()\n"
        "    threading.Event().wait()\n"
    )
    return [sys.executable, "-c", code]


def prepare_root(root: Path) -> None:
    """The files the filesystem attacks read: a file whose read_file answer is ~91 KiB, the glob tree."""
    (root / SSE_FILE).write_text(("0123456789abcdef" * 5 + "\n") * 560, encoding="utf-8")
    make_glob_tree(root)


def run(seconds: float, names: tuple[str, ...] = CLASS_NAMES) -> list[ClassResult]:
    chosen = [attack for attack in CLASSES if attack.name in names]
    services = tuple(dict.fromkeys(attack.service for attack in chosen))
    results: list[ClassResult] = []
    with workloads(services) as found, contextlib.ExitStack() as stack:
        if "filesystem" in found:
            prepare_root(Path(found["filesystem"].env["ALLOWED_PATHS"].rsplit(":", 1)[0]))
        page_url = ""
        if "fetch" in found:
            port = free_port()
            stack.enter_context(backend("big page server", big_page_server_command(port), port))
            page_url = f"http://{HOST}:{port}/big.html"
        for attack in chosen:
            print(f"  {attack.name} ({attack.service}): {attack.what}", flush=True)
            try:
                result = run_class(attack, found[attack.service], seconds, page_url)
            except Exception as exc:
                traceback.print_exc()
                workload = found[attack.service]
                result = ClassResult(
                    attack.name, attack.service, attack.what, workload.tool, workload.arguments, {}, seconds
                )
                result.error = f"{type(exc).__name__}: {exc}"
            print(summary_line(result), flush=True)
            results.append(result)
    return results


def summary_line(result: ClassResult) -> str:
    if result.error:
        return f"    failed: {result.error}"
    base, under = result.baseline, result.under_attack
    got = ", ".join(f"{kind} x{n}" for kind, n in result.outcome["got"].items())
    return (
        f"    RSS idle {result.idle_rss_mb} MB, peak {result.peak_rss_mb} MB, "
        f"after {result.rss_after_mb} MB; "
        f"/health p99 {base['health']['p99_ms']} -> {under['health']['p99_ms']} ms, "
        f"{result.tool} p99 {base['call']['p99_ms']} -> {under['call']['p99_ms']} ms; "
        f"limit fired: {result.outcome['limit_fired']}\n    attacker got: {got}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="attack window per class")
    parser.add_argument("--only", nargs="*", choices=CLASS_NAMES, help="classes to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # the well-behaved client's own process
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(run_client(probe(json.loads(args.probe)))), flush=True)
        return
    results = run(args.seconds, tuple(args.only or CLASS_NAMES))
    if args.json:
        args.json.write_text(json.dumps([result.as_dict() for result in results], indent=2))


if __name__ == "__main__":
    main()
