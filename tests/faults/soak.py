"""Soak: tool calls over every transport at concurrency 64 while backends, clients and services fail.

    .venv/bin/python -m tests.faults.soak [--seconds 60] [--concurrency 64] [--json soak.json]

Three services run as child processes (``mcp-sse serve``): filesystem (a read-write temporary root),
postgres (a real PostgreSQL, harness/postgres.py) and monitoring. Workers call them over
``/mcp``, ``/rpc`` and ``/sse`` (+ ``/messages``) without pause: filesystem ``write_file`` then
``read_file`` of files whose every version is known (length and SHA-256 in a header line), postgres
``execute_sql`` with a parameter echoed back, monitoring ``get_system_metrics``. Along the way (times are
fractions of ``--seconds``):

* 0.10  SSE clients killed in bulk: 150 extra sessions (with calls in flight) aborted with a TCP reset
* 0.20  malformed and oversized bodies on every path of every service (bad JSON, wrong shapes, 2 MiB
        bodies, chunked bodies past the limit, a Content-Length that lies, 100,000-deep nesting)
* 0.35  PostgreSQL stopped (fast shutdown) for ``0.08 x seconds`` (at least 2 s) and started again;
        recovery = from its return to the first successful execute_sql (probed every 50 ms)
* 0.55  SIGTERM to the filesystem service mid-load; it drains, exits, and is started again

Checked afterwards (a failed check makes the exit status 1):

* no 5xx except the documented 503s (``/health`` while PostgreSQL is down; the shutdown 503 for calls
  cut off after the grace period); every call succeeded or got a clear error (an ``isError`` result with
  text, or a JSON-RPC error other than -32603 with a message); connection refusals only for the
  filesystem service between its SIGTERM and its return; nothing hangs (30 s client timeout);
* every file written is one complete version (length and hash), and no temporary file is left;
* after the storm, with every client gone: ``mcp_sse_sessions_open`` and ``mcp_tool_calls_in_flight``
  are 0; no established connection on the service's port; open fds within 3 of the warmed-up
  baseline; postgres holds at most POSTGRES_POOL_MAX_SIZE connections to PostgreSQL; RSS within
  the tolerance of :data:`RSS_TOLERANCE_MB` (see there for why a tolerance at all).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from harness.http_client import Connection
from harness.processes import HOST, ServiceProcess, raise_fd_limit

# After a burst, CPython keeps the memory it used in pymalloc arenas and glibc malloc keeps freed blocks
# for reuse: RSS stays near its high-water mark instead of returning to the idle figure. A leak grows
# with the number of calls instead; tens of thousands of calls leaking even 1 KiB each would pass this
# bound by far, while the working set of a 64-way storm (request and response bodies of up to 64 KiB,
# 150 SSE sessions, thread stacks) stays well inside it.
RSS_TOLERANCE_MB = 25.0
FD_TOLERANCE = 3
POOL_MAX_SIZE = 5
CALL_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 1_048_576
SHUTDOWN_GRACE_S = 2.0
SERVICES = ("filesystem", "postgres", "monitoring")
TRANSPORTS = ("mcp", "rpc", "sse")
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
FILES = 16
VERSIONS = 6


# Known file contents ------------------------------------------------------------------------------------


def file_content(index: int, version: int) -> str:
    """Version ``version`` of file ``index``: a header giving the body's length and SHA-256, then the body."""
    size = 512 * 4**version % 65_536 + 97 * version + 31 * index  # 0.5 KiB .. 64 KiB, every version differs
    body = (f"file {index} version {version} " * (size // 24 + 1))[:size]
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f"length={size} sha256={digest}\n{body}"


def is_complete_version(text: str, index: int) -> bool:
    return any(text == file_content(index, version) for version in range(VERSIONS))


# Processes ----------------------------------------------------------------------------------------------


def soak_service(name: str, env: dict[str, str], log_dir: Path) -> ServiceProcess:
    """One ``mcp-sse serve NAME`` child on a fixed port, restartable; its log goes to ``log_dir``."""
    settings = {"MCP_LOG_LEVEL": "WARNING", "MCP_SHUTDOWN_GRACE_S": str(SHUTDOWN_GRACE_S), **env}
    return ServiceProcess(name, settings, log_path=log_dir / f"{name}.log")


@dataclass
class Footprint:
    """What a service process holds at one moment."""

    rss_mb: float
    fds: int
    clients: int  # established TCP connections on the service's own port
    backend: int  # established TCP connections to PostgreSQL (postgres only)


def footprint(service: ServiceProcess, backend_port: int | None = None) -> Footprint:
    process = psutil.Process(service.pid)
    connections = [c for c in process.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED]
    clients = sum(1 for c in connections if c.laddr and c.laddr.port == service.port)
    backend = sum(1 for c in connections if backend_port and c.raddr and c.raddr.port == backend_port)
    return Footprint(round(process.memory_info().rss / 2**20, 1), process.num_fds(), clients, backend)


async def gauges(service: ServiceProcess) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{service.url}/metrics")).text
    wanted = ("mcp_sse_sessions_open", "mcp_tool_calls_in_flight")
    values: dict[str, float] = {}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in wanted:
            values[name] = float(line.rsplit(" ", 1)[1])
    return values


# Outcomes -----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every call's outcome, by service and transport, per second, and the first examples of each bad kind."""

    started: float = field(default_factory=time.monotonic)
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    timeline: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    latencies: list[float] = field(default_factory=list)

    def add(
        self, service: str, transport: str, outcome: str, detail: str = "", latency: float | None = None
    ) -> None:
        self.counts[(service, transport, outcome)] += 1
        self.timeline[int(time.monotonic() - self.started)][f"{service}:{outcome}"] += 1
        if outcome.startswith("bad") and len(self.examples[outcome]) < 5:
            self.examples[outcome].append(f"{service} /{transport}: {detail[:300]}")
        if latency is not None and outcome == "ok":
            self.latencies.append(latency)

    def total(self, outcome_prefix: str = "") -> int:
        return sum(n for (_, _, outcome), n in self.counts.items() if outcome.startswith(outcome_prefix))


@dataclass
class Windows:
    """When the filesystem service may refuse connections (SIGTERM .. back + 1 s); PostgreSQL's outage."""

    down: list[list[float]] = field(default_factory=list)
    postgres: list[list[float]] = field(default_factory=list)

    def refusal_allowed(self, service: str) -> bool:
        return service == "filesystem" and _inside(self.down)

    def restarted(self, service: str) -> bool:
        return service == "filesystem" and bool(self.down)


def _inside(windows: list[list[float]]) -> bool:
    now = time.monotonic()
    return any(start <= now <= (end or now) + 1.0 for start, end in windows)


def classify(service: str, response: dict[str, Any], check: Any) -> tuple[str, str]:
    """``ok``, ``clear_error`` or a ``bad_*`` kind for one JSON-RPC response."""
    if "error" in response:
        error = response["error"]
        if error.get("code") == -32603:
            return "bad_internal_error", json.dumps(response)
        if not (isinstance(error.get("message"), str) and error["message"]):
            return "bad_error_without_message", json.dumps(response)
        return "clear_error", ""
    result = response.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("isError"), bool):
        return "bad_malformed_result", json.dumps(response)
    text = result.get("content", [{}])[0].get("text", "")
    if result["isError"]:
        return ("clear_error", "") if text else ("bad_error_without_text", json.dumps(response))
    problem = check(result.get("structuredContent") or {})
    return ("bad_wrong_content", problem) if problem else ("ok", "")


# Workers ------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """One worker: which service it calls, over which transport."""

    service: str
    transport: str
    index: int


class Caller:
    """Sends tools/call over one transport with harness.http_client's light keep-alive connections.

    httpx costs about 5 ms of client CPU per call on this machine, which would make the load generator,
    not the services, the bottleneck. A broken connection is dropped and the next call opens a new one;
    SSE keeps a stream and matches answers to calls by id.
    """

    def __init__(self, service: ServiceProcess, transport: str) -> None:
        self.service = service
        self.transport = transport
        self.ids = itertools.count(1)
        self.connection: Connection | None = None
        self.stream: Connection | None = None
        self.endpoint = ""
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def call(self, tool: str, arguments: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """(HTTP status, JSON-RPC response); the response is None when there is no JSON body to read."""
        request_id = next(self.ids)
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
        ).encode()
        if self.transport == "sse":
            await self._ensure_stream()
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self.pending[request_id] = future
            try:
                status, payload = await self._post(self.endpoint, body)
                if status == 404 and self.reader is not None:
                    # The service no longer holds this session (it was restarted): open a new stream
                    # on the next call, as a client does after a 404 for its session.
                    self.reader.cancel()
                return (200, await future) if status == 202 else (status, payload)
            finally:
                self.pending.pop(request_id, None)
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: the stream may have failed it after the POST did
                future.cancel()
        return await self._post(f"/{self.transport}", body)

    async def _post(self, path: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        if self.connection is None:
            self.connection = await Connection(HOST, self.service.port).open()
        try:
            response = await self.connection.request(
                "POST", path, body, {"Content-Type": "application/json", **MCP_HEADERS}
            )
        except BaseException:
            await self._drop()
            raise
        try:
            return response.status, json.loads(response.body) if response.body else None
        except ValueError:
            return response.status, None

    async def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(BaseException):
                await connection.close()

    async def _ensure_stream(self) -> None:
        if self.reader is not None and not self.reader.done():
            return
        stream = await Connection(HOST, self.service.port).open()
        try:
            status = await stream.open_stream("/sse")
            if status != 200:
                raise ConnectionResetError(f"GET /sse answered {status}")
            event, data = await read_sse_event(stream)
            if event != "endpoint":
                raise ConnectionResetError(f"the stream began with {event!r}, not endpoint")
        except BaseException:
            await stream.close()
            raise
        self.stream, self.endpoint = stream, data
        self.reader = asyncio.create_task(self._read(stream))

    async def _read(self, stream: Connection) -> None:
        try:
            while True:
                _, data = await read_sse_event(stream)
                message = json.loads(data)
                future = self.pending.get(message.get("id")) if isinstance(message, dict) else None
                if future is not None and not future.done():
                    future.set_result(message)
        except BaseException as exc:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(StreamClosed(f"{type(exc).__name__}: {exc}"))
            with contextlib.suppress(BaseException):
                await stream.close()
            if not isinstance(exc, Exception):
                raise

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader
        await self._drop()


async def read_sse_event(stream: Connection) -> tuple[str, str]:
    """The next event of a chunked SSE stream (chunk-size lines and comments skipped); EOF raises."""
    assert stream.reader is not None
    event, data = "message", ""
    while True:
        raw = await stream.reader.readline()
        if not raw:
            raise ConnectionResetError("the SSE stream ended")
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data:
            return event, data


class StreamClosed(Exception):
    """The SSE stream ended before the answer came (the service shut down)."""


async def worker(plan: Plan, caller: Caller, tally: Tally, windows: Windows, stop_at: float) -> None:
    rng = random.Random(plan.index)
    while time.monotonic() < stop_at:
        tool, arguments, check = next_call(plan, rng)
        started = time.monotonic()
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                status, response = await caller.call(tool, arguments)
        except TimeoutError:
            tally.add(plan.service, plan.transport, "bad_hang", f"{tool} took over {CALL_TIMEOUT_S} s")
            continue
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, StreamClosed) as exc:
            outcome = (
                "refused_while_down" if windows.refusal_allowed(plan.service) else "bad_connection_error"
            )
            tally.add(plan.service, plan.transport, outcome, f"{tool}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.1)
            continue
        latency = time.monotonic() - started
        if status == 503 and windows.refusal_allowed(plan.service):
            tally.add(plan.service, plan.transport, "shutdown_503")
        elif status >= 500:
            tally.add(plan.service, plan.transport, f"bad_http_{status}", f"{tool}: {response}")
        elif status == 404 and plan.transport == "sse" and windows.restarted(plan.service):
            # "unknown or closed session": a stream of the process that was stopped, answered by the
            # new one; the caller reconnects.
            tally.add(plan.service, plan.transport, "refused_while_down", f"{tool}: {response}")
        elif response is None or status != 200:
            tally.add(
                plan.service, plan.transport, "bad_unexpected_http", f"{tool}: HTTP {status} {response}"
            )
        else:
            outcome, detail = classify(plan.service, response, check)
            tally.add(plan.service, plan.transport, outcome, f"{tool}: {detail}", latency)


def next_call(plan: Plan, rng: random.Random) -> tuple[str, dict[str, Any], Any]:
    """The next tool call of a worker and the check of its structured result ('' when right)."""
    if plan.service == "filesystem":
        index = rng.randrange(FILES)
        path = f"soak/file-{index:02d}.txt"
        if rng.random() < 0.5:
            content = file_content(index, rng.randrange(VERSIONS))
            return "write_file", {"path": path, "content": content}, lambda result: ""

        def check_read(result: dict[str, Any]) -> str:
            text = result.get("content", "")
            return (
                ""
                if is_complete_version(text, index)
                else f"{path} holds {len(text)} chars of no known version"
            )

        return "read_file", {"path": path}, check_read
    if plan.service == "postgres":
        number = rng.randrange(1_000_000)

        def check_sql(result: dict[str, Any]) -> str:
            rows = result.get("rows") or []
            first = rows[0] if rows else None
            value = first.get("n") if isinstance(first, dict) else (first[0] if first else None)
            return "" if value == number else f"expected n={number}, got rows {rows!r:.200}"

        return (
            "execute_sql",
            {"query": "SELECT $1::int AS n, count(*) AS c FROM pg_class", "params": [number]},
            check_sql,
        )
    return "get_system_metrics", {}, lambda result: "" if "cpu" in json.dumps(result) else "no cpu figures"


# Faults -------------------------------------------------------------------------------------------------


async def kill_sse_clients(services: dict[str, ServiceProcess], count: int) -> dict[str, Any]:
    """Open ``count`` SSE sessions with a call in flight on each, then reset every connection at once."""
    targets = [services["postgres"], services["monitoring"]]
    crowd = asyncio.Semaphore(50)

    async def victim(number: int) -> asyncio.StreamWriter | None:
        service = targets[number % len(targets)]
        tool, arguments = (
            ("execute_sql", {"query": "SELECT pg_sleep(0.5)"})
            if service.name == "postgres"
            else ("get_system_metrics", {})
        )
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
        ).encode()
        async with crowd:
            try:
                reader, writer = await asyncio.open_connection(HOST, service.port)
                writer.write(
                    f"GET /sse HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    return None  # refused (a session limit): nothing to kill
                endpoint = ""
                while not endpoint:
                    line = await reader.readline()
                    if not line:
                        return None  # the stream ended before naming its endpoint
                    text = line.decode().strip()
                    endpoint = text[5:].strip() if text.startswith("data:") else ""
                post_reader, poster = await asyncio.open_connection(HOST, service.port)
                poster.write(
                    f"POST {endpoint} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await post_reader.readuntil(b"\r\n\r\n")  # 202: the call is running
                poster.close()
                return writer
            except (OSError, asyncio.IncompleteReadError, ValueError):
                return None

    victims = [writer for writer in await asyncio.gather(*(victim(n) for n in range(count))) if writer]
    for writer in victims:
        writer.transport.abort()  # RST, no FIN: the clients vanished with their calls in flight
    return {"sessions_killed": len(victims)}


MALFORMED: list[tuple[str, bytes, dict[str, str]]] = [
    ("empty body", b"", {}),
    ("truncated JSON", b'{"jsonrpc": "2.0", "id": 1, "method": "tools/ca', {}),
    ("not UTF-8", b"\xff\xfe\x00garbage\x80", {}),
    ("a JSON string", b'"hello"', {}),
    ("an empty batch", b"[]", {}),
    (
        "arguments not an object",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":7}}',
        {},
    ),
    ("params an array", b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1,2]}', {}),
    ("id an object", b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', {}),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, {}),
    (
        "2 MiB body",
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"x" * 2 * 2**20 + b'"}}',
        {},
    ),
    ("wrong content type", b'{"jsonrpc":"2.0","id":1,"method":"ping"}', {"Content-Type": "text/plain"}),
    (
        "a batch of 500",
        json.dumps([{"jsonrpc": "2.0", "id": n, "method": "ping"} for n in range(500)]).encode(),
        {},
    ),
]


async def send_malformed(services: dict[str, ServiceProcess]) -> dict[str, Any]:
    """Every malformed body to /mcp, /rpc and a live SSE session's /messages of each service; raw cases."""
    statuses: Counter[str] = Counter()
    bad: list[str] = []
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S) as client:

        async def one(service: ServiceProcess) -> None:
            async with open_sse(client, service) as endpoint:
                paths = [
                    "/mcp",
                    "/rpc",
                    *([endpoint] if endpoint else []),
                    "/messages?session_id=nope",
                    "/messages",
                ]
                for path in paths:
                    for name, body, headers in MALFORMED:
                        try:
                            response = await client.post(
                                f"{service.url}{path}",
                                content=body,
                                headers={"Content-Type": "application/json", **MCP_HEADERS, **headers},
                            )
                        except httpx.TransportError as exc:
                            # A server may close the connection after answering 413 while the body is still
                            # being sent; the filesystem service may be restarting.
                            if name == "2 MiB body" or service.name == "filesystem":
                                statuses["closed"] += 1
                            else:
                                bad.append(f"{service.name} {path} {name}: {type(exc).__name__}")
                            continue
                        statuses[str(response.status_code)] += 1
                        if response.status_code >= 500:
                            bad.append(
                                f"{service.name} {path} {name}: HTTP {response.status_code} "
                                f"{response.text[:200]}"
                            )
            statuses.update(await _raw_cases(service, bad))

        await asyncio.gather(*(one(service) for service in services.values()))
    return {"requests": sum(statuses.values()), "statuses": dict(statuses), "bad": bad}


@contextlib.asynccontextmanager
async def open_sse(client: httpx.AsyncClient, service: ServiceProcess) -> AsyncIterator[str | None]:
    """An SSE session held open while the body runs; yields its /messages endpoint (None if it failed)."""
    opened: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    release = asyncio.Event()

    async def hold() -> None:
        try:
            async with client.stream("GET", f"{service.url}/sse") as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:") and not opened.done():
                        opened.set_result(line[5:].strip())
                        await release.wait()
                        return
        except httpx.HTTPError:
            pass
        finally:
            if not opened.done():
                opened.set_result(None)

    holder = asyncio.create_task(hold())
    try:
        async with asyncio.timeout(10):
            endpoint = await opened
    except TimeoutError:
        endpoint = None
    try:
        yield endpoint
    finally:
        release.set()
        holder.cancel()
        with contextlib.suppress(BaseException):
            await holder


async def _raw_cases(service: ServiceProcess, bad: list[str]) -> Counter[str]:
    """A Content-Length that promises more than comes, and a chunked body past the size limit."""
    statuses: Counter[str] = Counter()
    cases = {
        "lying Content-Length": f"POST /rpc HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f'Content-Length: 5000\r\n\r\n{{"jsonrpc"'.encode(),
        "chunked past the limit": f"POST /mcp HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n".encode()
        + (f"{0x10000:x}\r\n".encode() + b"x" * 0x10000 + b"\r\n") * 20
        + b"0\r\n\r\n",
    }
    for name, raw in cases.items():
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
            reader, writer = await asyncio.open_connection(HOST, service.port)
            writer.write(raw)
            if name == "lying Content-Length":
                await writer.drain()
                writer.transport.abort()  # the client goes away mid-body: no answer expected
                statuses["aborted"] += 1
                continue
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n")
            status = int(head.split()[1])
            statuses[str(status)] += 1
            if status >= 500:
                bad.append(f"{service.name} {name}: HTTP {status}")
            writer.transport.abort()
    return statuses


# The run ------------------------------------------------------------------------------------------------


@dataclass
class SoakReport:
    seconds: float
    concurrency: int
    calls: dict[str, int] = field(default_factory=dict)
    by_service: dict[str, dict[str, int]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    bad_examples: dict[str, list[str]] = field(default_factory=dict)
    malformed: dict[str, Any] = field(default_factory=dict)
    sse_kill: dict[str, Any] = field(default_factory=dict)
    postgres_recovery_s: float | None = None
    postgres_health_recovery_s: float | None = None
    health_while_down: list[int] = field(default_factory=list)
    filesystem_restart: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)
    after: dict[str, dict[str, Any]] = field(default_factory=dict)
    gauges_after: dict[str, dict[str, float]] = field(default_factory=dict)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    load_average: list[float] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check["ok"] for check in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})


@contextlib.contextmanager
def backends(log_dir: Path) -> Iterator[tuple[Any, str, Path]]:
    """A PostgreSQL cluster and a read-write root; yields (LocalPostgres, app URL, root)."""
    from harness.postgres import Cluster, create_databases, run_async, start_cluster

    server = start_cluster(max_connections="100")
    try:
        run_async(create_databases(server))
        with tempfile.TemporaryDirectory(prefix="mcp-soak-") as root:
            (Path(root) / "soak").mkdir()
            yield server, Cluster(server).app_url(), Path(root)
    finally:
        server.destroy()


async def warm_up(services: dict[str, ServiceProcess], seconds: float) -> None:
    tally, windows = Tally(), Windows()
    async with clients(services, 16) as callers:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(worker(plan, caller, tally, windows, stop_at) for plan, caller in callers))
    if tally.total("bad"):
        raise RuntimeError(f"warm-up calls failed: {dict(tally.examples)}")


@contextlib.asynccontextmanager
async def clients(
    services: dict[str, ServiceProcess], concurrency: int
) -> AsyncIterator[list[tuple[Plan, Caller]]]:
    """``concurrency`` workers: 3/8 filesystem, 3/8 postgres, 2/8 monitoring, each transport a third."""
    weights = ["filesystem"] * 3 + ["postgres"] * 3 + ["monitoring"] * 2
    plans = [
        Plan(weights[i % len(weights)], TRANSPORTS[(i // len(weights)) % 3], i) for i in range(concurrency)
    ]
    callers = [(plan, Caller(services[plan.service], plan.transport)) for plan in plans]
    try:
        yield callers
    finally:
        await asyncio.gather(*(caller.close() for _, caller in callers))


async def storm(report: SoakReport, services: dict[str, ServiceProcess], postgres: Any, root: Path) -> Tally:
    seconds = report.seconds
    tally, windows = Tally(), Windows()
    began = time.monotonic()
    stop_at = began + seconds

    def event(name: str, **details: Any) -> None:
        report.events.append({"t": round(time.monotonic() - began, 2), "event": name, **details})
        print(f"  t={time.monotonic() - began:5.1f} s  {name} {details if details else ''}", flush=True)

    async def at(fraction: float) -> None:
        await asyncio.sleep(max(0.0, began + fraction * seconds - time.monotonic()))

    async def faults() -> None:
        await at(0.10)
        report.sse_kill = await kill_sse_clients(services, 150)
        event("kill SSE clients", **report.sse_kill)
        await at(0.20)
        report.malformed = await send_malformed(services)
        event(
            "malformed bodies sent",
            requests=report.malformed["requests"],
            statuses=report.malformed["statuses"],
        )
        await at(0.35)
        await postgres_outage(
            report, services["postgres"], postgres, max(2.0, 0.08 * seconds), event, windows
        )
        await at(0.55)
        await restart_filesystem(report, services["filesystem"], windows, event)

    async with clients(services, report.concurrency) as callers:
        work = [worker(plan, caller, tally, windows, stop_at) for plan, caller in callers]
        await asyncio.gather(faults(), *work)
    event("load stopped")
    return tally


async def postgres_outage(
    report: SoakReport, service: ServiceProcess, postgres: Any, down_s: float, event: Any, windows: Windows
) -> None:
    window = [time.monotonic(), 0.0]
    windows.postgres.append(window)
    await asyncio.to_thread(postgres.stop)
    event("PostgreSQL stopped")
    async with httpx.AsyncClient(timeout=10) as client:
        ends = time.monotonic() + down_s
        while time.monotonic() < ends:
            with contextlib.suppress(httpx.HTTPError):
                report.health_while_down.append((await client.get(f"{service.url}/health")).status_code)
            await asyncio.sleep(0.25)
        await asyncio.to_thread(postgres.start)
        back = time.monotonic()
        event("PostgreSQL started")
        probe = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "execute_sql", "arguments": {"query": "SELECT 1 AS one"}},
        }
        while time.monotonic() - back < 60 and (
            report.postgres_recovery_s is None or report.postgres_health_recovery_s is None
        ):
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                if report.postgres_recovery_s is None:
                    answer = (await client.post(f"{service.url}/rpc", json=probe)).json()
                    if answer["result"]["isError"] is False:
                        report.postgres_recovery_s = round(time.monotonic() - back, 3)
                if report.postgres_health_recovery_s is None:
                    if (await client.get(f"{service.url}/health")).status_code == 200:
                        report.postgres_health_recovery_s = round(time.monotonic() - back, 3)
            await asyncio.sleep(0.05)
    event(
        "postgres service recovered",
        calls_s=report.postgres_recovery_s,
        health_s=report.postgres_health_recovery_s,
    )


async def restart_filesystem(
    report: SoakReport, service: ServiceProcess, windows: Windows, event: Any
) -> None:
    window: list[float] = [time.monotonic(), 0.0]
    windows.down.append(window)
    service.terminate()
    event("SIGTERM to filesystem")
    sent = time.monotonic()
    code, _ = await asyncio.to_thread(service.wait, 60)
    drained = time.monotonic() - sent
    restarted = time.monotonic()
    await asyncio.to_thread(service.start, 60)
    restart_s = time.monotonic() - restarted
    window[1] = time.monotonic()
    report.filesystem_restart = {
        "exit_code": code,
        "drain_s": round(drained, 3),
        "restart_s": round(restart_s, 3),
    }
    event("filesystem back", **report.filesystem_restart)


async def settle(report: SoakReport, services: dict[str, ServiceProcess], pg_port: int) -> None:
    """Wait (bounded) until every gauge is 0 and no client connection is left, then record the footprint."""
    deadline = time.monotonic() + 15
    while True:
        values = {name: await gauges(service) for name, service in services.items()}
        prints = {name: footprint(service, pg_port) for name, service in services.items()}
        idle = all(not any(v.values()) for v in values.values()) and all(
            f.clients == 0 for f in prints.values()
        )
        if idle or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    report.gauges_after = {name: await gauges(service) for name, service in services.items()}
    report.after = {
        name: dataclasses.asdict(footprint(service, pg_port)) for name, service in services.items()
    }


def verify_files(report: SoakReport, root: Path) -> None:
    directory = root / "soak"
    names = sorted(path.name for path in directory.iterdir())
    expected = {f"file-{index:02d}.txt" for index in range(FILES)}
    complete = [
        name
        for name in names
        if name in expected
        and is_complete_version((directory / name).read_text(encoding="utf-8"), int(name[5:7]))
    ]
    report.files = {
        "files": len(names),
        "complete": len(complete),
        "incomplete": [name for name in names if name in expected and name not in complete],
        "leftovers": [name for name in names if name not in expected],
    }


def judge(report: SoakReport, tally: Tally) -> None:
    report.calls = {
        "total": tally.total(),
        "ok": tally.total("ok"),
        "clear_error": tally.total("clear_error"),
        "refused_while_down": tally.total("refused_while_down"),
        "shutdown_503": tally.total("shutdown_503"),
        "bad": tally.total("bad"),
    }
    for (service, _, outcome), n in tally.counts.items():
        kind = "bad" if outcome.startswith("bad") else outcome
        report.by_service.setdefault(service, {}).setdefault(kind, 0)
        report.by_service[service][kind] += n
    report.timeline = [{"t": second, **dict(counter)} for second, counter in sorted(tally.timeline.items())]
    report.bad_examples = dict(tally.examples)
    ordered = sorted(tally.latencies)
    if ordered:
        report.p50_ms = round(ordered[len(ordered) // 2] * 1000, 2)
        report.p99_ms = round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2)
    report.check(
        "every call succeeded or got a clear error",
        report.calls["bad"] == 0,
        f"{report.calls}; examples: {report.bad_examples}",
    )
    report.check(
        "calls kept succeeding on every service",
        all(report.by_service.get(name, {}).get("ok", 0) > 0 for name in SERVICES),
        f"{report.by_service}",
    )
    report.check(
        "no 5xx for malformed or oversized bodies",
        not report.malformed.get("bad"),
        f"{report.malformed.get('statuses')}; {report.malformed.get('bad')}",
    )
    report.check(
        "/health said 503 while PostgreSQL was down, nothing else",
        bool(report.health_while_down) and set(report.health_while_down) <= {503},
        f"statuses {sorted(set(report.health_while_down))}",
    )
    report.check(
        "the postgres service recovered after PostgreSQL returned",
        report.postgres_recovery_s is not None,
        f"first successful call {report.postgres_recovery_s} s, "
        f"/health 200 {report.postgres_health_recovery_s} s",
    )
    report.check(
        "the filesystem service drained on SIGTERM and exited 0",
        report.filesystem_restart.get("exit_code") == 0,
        f"{report.filesystem_restart}",
    )
    report.check(
        "every file is one complete version, no temporary file left",
        not report.files["incomplete"] and not report.files["leftovers"] and report.files["complete"] > 0,
        f"{report.files}",
    )
    for name in SERVICES:
        before, after, gauge = report.baseline[name], report.after[name], report.gauges_after[name]
        report.check(
            f"{name}: SSE sessions and calls in flight back to 0",
            gauge.get("mcp_sse_sessions_open") == 0 and gauge.get("mcp_tool_calls_in_flight") == 0,
            f"{gauge}",
        )
        report.check(
            f"{name}: no client connection left", after["clients"] == 0, f"{after['clients']} established"
        )
        report.check(
            f"{name}: open fds back to baseline (+{FD_TOLERANCE})",
            after["fds"] <= before["fds"] + FD_TOLERANCE,
            f"{before['fds']} -> {after['fds']}",
        )
        report.check(
            f"{name}: RSS back near baseline (+{RSS_TOLERANCE_MB:g} MB)",
            after["rss_mb"] <= before["rss_mb"] + RSS_TOLERANCE_MB,
            f"{before['rss_mb']} -> {after['rss_mb']} MB",
        )
    report.check(
        f"postgres: at most {POOL_MAX_SIZE} connections to PostgreSQL",
        report.after["postgres"]["backend"] <= POOL_MAX_SIZE,
        f"{report.after['postgres']['backend']}",
    )


# Every soak client comes from 127.0.0.1, standing in for many clients, so the per-client shares are
# widened to the service-wide limits; those (and their refusals) stay as deployed.
ONE_ADDRESS_MANY_CLIENTS = {
    "MCP_SSE_MAX_SESSIONS_PER_CLIENT": "1024",
    "MCP_MAX_CONNECTIONS_PER_CLIENT": "1024",
    "MCP_CLIENT_SHARE": "1",
}


def run(seconds: float, concurrency: int) -> SoakReport:
    raise_fd_limit(4096)
    report = SoakReport(seconds=seconds, concurrency=concurrency)
    logs = tempfile.mkdtemp(prefix="mcp-soak-logs-")
    with backends(Path(logs)) as (postgres, url, root):
        envs = {
            "filesystem": {"ALLOWED_PATHS": f"{root}:rw", **ONE_ADDRESS_MANY_CLIENTS},
            "postgres": {
                "DATABASE_URL": url,
                "POSTGRES_POOL_MAX_SIZE": str(POOL_MAX_SIZE),
                "POSTGRES_STATEMENT_TIMEOUT_S": "5",
                **ONE_ADDRESS_MANY_CLIENTS,
            },
            "monitoring": dict(ONE_ADDRESS_MANY_CLIENTS),
        }
        services = {name: soak_service(name, envs[name], Path(logs)) for name in SERVICES}
        try:
            for service in services.values():
                service.start(timeout=60)
            asyncio.run(warm_up(services, min(5.0, seconds / 10)))
            time.sleep(1.0)
            report.baseline = {
                name: dataclasses.asdict(footprint(s, postgres.port)) for name, s in services.items()
            }
            print(f"  baseline {report.baseline}", flush=True)
            report.load_average = [round(x, 2) for x in os.getloadavg()]
            tally = asyncio.run(storm(report, services, postgres, root))
            asyncio.run(settle(report, services, postgres.port))
            verify_files(report, root)
            judge(report, tally)
        finally:
            for service in services.values():
                service.stop()
    if report.passed:
        shutil.rmtree(logs, ignore_errors=True)
    else:
        print(f"service logs kept in {logs}", file=sys.stderr)
    return report


def print_report(report: SoakReport) -> None:
    print(
        f"\nsoak: {report.seconds:g} s at concurrency {report.concurrency}, "
        f"load average {report.load_average}"
    )
    print(f"calls {report.calls}; ok p50 {report.p50_ms} ms p99 {report.p99_ms} ms")
    print(
        f"postgres recovery: first successful call {report.postgres_recovery_s} s after PostgreSQL returned, "
        f"/health 200 after {report.postgres_health_recovery_s} s"
    )
    for check in report.checks:
        print(f"  [{'ok' if check['ok'] else 'FAIL'}] {check['name']}: {check['detail'][:400]}")
    print("PASSED" if report.passed else "FAILED")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the storm (default 60)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    args = parser.parse_args()
    report = run(args.seconds, args.concurrency)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(report) | {"passed": report.passed}, indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
