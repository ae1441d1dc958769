"""Cold start, idle memory, and 1,000 concurrent idle SSE sessions.

    .venv/bin/python -m bench.resources_bench [--starts 3] [--sessions 1000] [--json out.json]

* Cold start: from ``exec`` of ``mcp-sse serve NAME`` (backend configured and up) to the first
  ``/health`` answering 200, median of ``--starts``; the same for the anchors (the official SDK server
  and the bare ASGI floor) so the Python + uvicorn part is visible.
* Idle RSS: psutil RSS (and USS, the memory only this process holds) of each freshly started service
  after one tools/list and one call of its representative tool, then 1 s of rest.
* SSE sessions: ``--sessions`` concurrent ``GET /sse`` streams on the filesystem service with
  ``MCP_SSE_KEEPALIVE_S=2``: time to open them all (each one read up to its ``endpoint`` event), the
  service's extra RSS and open fds per session, ``mcp_sse_sessions_open`` from /metrics, how many
  streams see a keep-alive comment within 2 keep-alive periods, a tool call answered through one of the
  streams while all are open, and the gauge and fds after the clients close.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.service_bench import SERVICE_NAMES, Workload, call_once, service_env, workloads
from harness.http_client import Connection
from harness.processes import (
    HOST,
    REPO_ROOT,
    ServiceProcess,
    free_port,
    raise_fd_limit,
    serve_command,
    stop_child,
)

KEEPALIVE_S = 2.0
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
NOOP_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "noop", "arguments": {}}}


@dataclass
class StartResult:
    name: str
    cold_start_s: list[float]
    idle_rss_mb: float = 0.0
    idle_uss_mb: float = 0.0

    @property
    def median_s(self) -> float:
        return statistics.median(self.cold_start_s) if self.cold_start_s else 0.0


@dataclass
class SseResult:
    sessions: int
    opened: int
    open_seconds: float
    baseline_rss_mb: float
    open_rss_mb: float
    closed_rss_mb: float
    baseline_fds: int
    open_fds: int
    closed_fds: int
    gauge_open: float
    gauge_closed: float
    keepalives_seen: int
    call_ms_while_open: float
    errors: list[str] = field(default_factory=list)

    @property
    def extra_mb(self) -> float:
        return self.open_rss_mb - self.baseline_rss_mb

    @property
    def kb_per_session(self) -> float:
        return self.extra_mb * 1024 / self.opened if self.opened else 0.0


# Cold start and idle memory --------------------------------------------------------------------------


Probe = Callable[[httpx.Client, int], bool]


def health_ok(client: httpx.Client, port: int) -> bool:
    return client.get(f"http://{HOST}:{port}/health").status_code == 200


def mcp_call_ok(client: httpx.Client, port: int) -> bool:
    """The anchors have no /health: ready means a tools/call is answered."""
    return client.post(f"http://{HOST}:{port}/mcp", json=NOOP_CALL, headers=MCP_HEADERS).status_code == 200


def time_to_healthy(
    command: list[str], env: dict[str, str], port: int, probe: Probe = health_ok, timeout_s: float = 60
) -> tuple[float, int, subprocess.Popen[bytes]]:
    """Start ``command``; seconds until ``probe`` passes (polled every 10 ms).

    The start is what is measured here, so this polls more often than ``ServiceProcess`` and each kind
    of target has its own probe of readiness; stopping is the shared ``stop_child``.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with httpx.Client(timeout=1) as client:
        while time.perf_counter() - started < timeout_s:
            with contextlib.suppress(httpx.HTTPError):
                if probe(client, port):
                    return time.perf_counter() - started, proc.pid, proc
            if proc.poll() is not None:
                raise RuntimeError(f"{command} exited with {proc.returncode}")
            time.sleep(0.01)
    stop_child(proc, timeout=0)
    raise RuntimeError(f"{command} was not healthy within {timeout_s} s")


def child_env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MCP_ENV_FILE": os.devnull, **extra}


def measure_start(
    name: str, command_for: Any, env_for: Any, starts: int, warm: Any, probe: Probe = health_ok
) -> StartResult:
    result = StartResult(name, [])
    for attempt in range(starts):
        port = free_port()
        seconds, pid, proc = time_to_healthy(command_for(port), child_env(env_for(port)), port, probe)
        result.cold_start_s.append(round(seconds, 3))
        try:
            if attempt == starts - 1:
                warm(port)
                time.sleep(1.0)
                info = psutil.Process(pid).memory_full_info()
                result.idle_rss_mb = round(info.rss / 2**20, 1)
                result.idle_uss_mb = round(info.uss / 2**20, 1)
        finally:
            stop_child(proc)
    print(
        f"  {name}: cold start median {result.median_s:.2f} s {result.cold_start_s}, idle RSS "
        f"{result.idle_rss_mb} MB (USS {result.idle_uss_mb} MB)",
        flush=True,
    )
    return result


def warm_service(workload: Workload) -> Any:
    def warm(port: int) -> None:
        httpx.post(
            f"http://{HOST}:{port}/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30
        )
        call_once(port, workload)

    return warm


def warm_mcp_post(port: int) -> None:
    httpx.post(f"http://{HOST}:{port}/mcp", json=NOOP_CALL, headers=MCP_HEADERS, timeout=30)


def run_starts(starts: int, names: tuple[str, ...] = SERVICE_NAMES) -> list[StartResult]:
    results = []
    with workloads(names) as found:
        for name in names:
            workload = found[name]
            results.append(
                measure_start(
                    name,
                    lambda port, n=name: serve_command(n),
                    lambda port, w=workload: {
                        "MCP_HOST": HOST,
                        "MCP_PORT": str(port),
                        "MCP_METRICS_PORT": "0",
                        **service_env(w),
                    },
                    starts,
                    warm_service(workload),
                )
            )
    root = str(REPO_ROOT)
    results.append(
        measure_start(
            "noop (libmcp, no backend)",
            lambda port: [sys.executable, "-m", "bench.noop_service", str(port)],
            lambda port: {},
            starts,
            warm_mcp_post,
        )
    )
    results.append(
        measure_start(
            "sdk (official SDK server)",
            lambda port: [sys.executable, "-m", "bench.reference_server", str(port), root],
            lambda port: {},
            starts,
            warm_mcp_post,
            mcp_call_ok,
        )
    )
    results.append(
        measure_start(
            "floor (bare ASGI)",
            lambda port: [sys.executable, "-m", "bench.floor_server", str(port)],
            lambda port: {},
            starts,
            warm_mcp_post,
            mcp_call_ok,
        )
    )
    return results


# What importing costs -------------------------------------------------------------------------------------

IMPORT_STEPS = (
    "libmcp",
    "fleet.cli",
    "services.filesystem.service",
    "asyncpg",
    "services.postgres.service",
    "lxml.html",
    "services.fetch.service",
    "github",
    "services.github.service",
    "kubernetes.client",
    "services.monitoring.kube_logs",
    "services.monitoring.service",
)

_IMPORT_PROBE = """
import importlib, json, sys, psutil
process = psutil.Process()
steps = [("python", process.memory_info().rss)]
for name in sys.argv[1:]:
    importlib.import_module(name)
    steps.append((name, process.memory_info().rss))
print(json.dumps(steps))
"""


def import_footprint() -> list[dict[str, Any]]:
    """RSS after each import, in one fresh interpreter: what each library adds to a service's idle memory."""
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *IMPORT_STEPS],
        cwd=REPO_ROOT,
        env=child_env({}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    steps = json.loads(completed.stdout)
    rows = [
        {
            "module": name,
            "rss_mb": round(rss / 2**20, 1),
            "added_mb": round((rss - steps[i - 1][1]) / 2**20, 1) if i else 0.0,
        }
        for i, (name, rss) in enumerate(steps)
    ]
    print("  " + ", ".join(f"{row['module']} +{row['added_mb']} MB" for row in rows[1:]), flush=True)
    return rows


# 1,000 idle SSE sessions -------------------------------------------------------------------------------


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


async def open_session(port: int) -> tuple[Connection, str]:
    connection = await Connection(HOST, port).open()
    status = await connection.open_stream("/sse")
    if status != 200:
        await connection.close()
        raise RuntimeError(f"GET /sse answered {status}")
    _, endpoint = await connection.read_event()
    return connection, endpoint


async def wait_for_keepalive(connection: Connection, timeout_s: float) -> bool:
    assert connection.reader is not None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                line = await connection.reader.readline()
                if not line:
                    return False
                if line.startswith(b": ping"):
                    return True
    except TimeoutError:
        return False


async def call_through(connection: Connection, port: int, endpoint: str) -> float:
    """A tools/call posted to the session's endpoint, answered on its stream; returns milliseconds."""
    poster = await Connection(HOST, port).open()
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "list_allowed_roots", "arguments": {}},
    }
    started = time.perf_counter()
    response = await poster.request(
        "POST", endpoint, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    await poster.close()
    if response.status != 202:
        raise RuntimeError(f"POST {endpoint} answered {response.status}")
    while True:
        event, data = await connection.read_event()
        if event == "message" and '"id":7' in data.replace(" ", ""):
            return (time.perf_counter() - started) * 1000


async def sse_storm(port: int, pid: int, sessions: int) -> SseResult:
    service = psutil.Process(pid)
    await asyncio.sleep(1.0)
    baseline_rss, baseline_fds = service.memory_info().rss / 2**20, service.num_fds()
    errors: list[str] = []
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(100)  # at most 100 handshakes in flight, as a crowd of clients reconnecting

    async def opened() -> tuple[Connection, str] | None:
        async with semaphore:
            try:
                return await open_session(port)
            except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return None

    results = await asyncio.gather(*(opened() for _ in range(sessions)))
    open_seconds = time.perf_counter() - started
    streams = [item for item in results if item is not None]
    await asyncio.sleep(1.0)
    open_rss, open_fds = service.memory_info().rss / 2**20, service.num_fds()
    gauge_open = await asyncio.to_thread(metric, port, "mcp_sse_sessions_open")
    seen = await asyncio.gather(*(wait_for_keepalive(conn, 2 * KEEPALIVE_S + 1) for conn, _ in streams))
    call_ms = await call_through(streams[0][0], port, streams[0][1]) if streams else float("nan")
    await asyncio.gather(*(conn.close() for conn, _ in streams))
    await asyncio.sleep(1.5)
    gauge_closed = await asyncio.to_thread(metric, port, "mcp_sse_sessions_open")
    closed_rss, closed_fds = service.memory_info().rss / 2**20, service.num_fds()
    return SseResult(
        sessions,
        len(streams),
        round(open_seconds, 3),
        round(baseline_rss, 1),
        round(open_rss, 1),
        round(closed_rss, 1),
        baseline_fds,
        open_fds,
        closed_fds,
        gauge_open,
        gauge_closed,
        sum(seen),
        round(call_ms, 2),
        errors[:5],
    )


def run_sse(sessions: int) -> SseResult:
    raise_fd_limit(sessions * 2 + 512)
    with workloads(("filesystem",)) as found:
        env = service_env(found["filesystem"], MCP_SSE_KEEPALIVE_S=str(KEEPALIVE_S))
        with ServiceProcess("filesystem", env) as filesystem:
            result = asyncio.run(sse_storm(filesystem.port, filesystem.pid, sessions))
    print(
        f"  {result.opened}/{sessions} SSE sessions open in {result.open_seconds:.2f} s; RSS "
        f"{result.baseline_rss_mb} -> {result.open_rss_mb} MB (+{result.extra_mb:.1f} MB, "
        f"{result.kb_per_session:.1f} KiB/session) -> {result.closed_rss_mb} MB after close; fds "
        f"{result.baseline_fds} -> {result.open_fds} -> {result.closed_fds}; gauge {result.gauge_open:g} -> "
        f"{result.gauge_closed:g}; keep-alives seen on {result.keepalives_seen}; a call through one stream "
        f"{result.call_ms_while_open} ms; errors {result.errors}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=3, help="cold starts per service (median reported)")
    parser.add_argument("--sessions", type=int, default=1000, help="concurrent idle SSE sessions")
    parser.add_argument("--skip-starts", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    starts = [] if args.skip_starts else run_starts(args.starts)
    sse = run_sse(args.sessions)
    if args.json:
        payload = {
            "starts": [asdict(item) | {"median_s": item.median_s} for item in starts],
            "sse": asdict(sse) | {"extra_mb": sse.extra_mb, "kb_per_session": sse.kb_per_session},
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
