"""tools/call throughput and latency per service, each on a cheap representative tool with its backend.

    .venv/bin/python -m bench.service_bench [--seconds 2] [--json out.json] [--only NAME ...]

Every service runs as ``mcp-sse serve NAME`` (a child process, as in a container); the load generator
runs here and calls over ``/mcp`` at concurrency 1, 16 and 64:

* filesystem  ``read_file`` of a 4 KiB text file in a temporary root
* postgres    ``execute_sql`` ``SELECT 1`` on a real PostgreSQL (a throwaway cluster, pool of 5)
* fetch       ``fetch`` of a 2 KB HTML page from a loopback page server (harness/pageserver.py,
              in its own process; guard opened for 127.0.0.1)
* github      ``get_repository`` against the GitHub API stand-in (harness/fake_github.py;
              the real API is unreachable here), three API requests per call
* monitoring  ``get_system_metrics`` (no backend; the tool samples CPU for 0.25 s by design)

The service's peak RSS while loaded is sampled every 50 ms (psutil). Backends that are processes
(PostgreSQL, the page server, the stand-in) run outside this process so they do not share its CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.loadgen import HEADER, Result, run_client
from bench.transport_bench import measure
from harness.processes import HOST, ServiceProcess, free_port

SERVICE_NAMES = ("filesystem", "postgres", "fetch", "github", "monitoring")
FAKE_GITHUB_TOKEN = "bench-token-0000"
PAGE = (
    "<html><head><title>Bench page</title></head><body><nav>menu</nav><article><h1>A small page</h1>"
    + "<p>Some text with a <a href='/x'>link</a> and <b>bold</b> words.</p>" * 24
    + "</article></body></html>"
)


@dataclass
class Workload:
    """How to run one service for a benchmark: its environment and the call that represents it."""

    name: str
    env: dict[str, str]
    tool: str
    arguments: dict[str, Any]
    backend: str


@dataclass
class ServiceResult:
    name: str
    tool: str
    backend: str
    cells: list[Result] = field(default_factory=list)
    peak_rss_mb: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tool": self.tool,
            "backend": self.backend,
            "peak_rss_mb": self.peak_rss_mb,
            "cells": [asdict(cell) | {"rps": cell.rps} for cell in self.cells],
        }


# Backends -------------------------------------------------------------------------------------------


def backend(name: str, command: list[str], port: int) -> ServiceProcess:
    """A backend process (page server, stand-in) on ``port``, ready once ``/`` answers anything.

    It gets a bare environment (PATH and PYTHONPATH): none of the caller's proxies or settings.
    """
    return ServiceProcess(
        name, command=command, port=port, health_path="/", ready_statuses=None, inherit_env=False
    )


def page_server_command(port: int) -> list[str]:
    code = (
        "import threading\n"
        "from harness.pageserver import PageServer, Reply\n"
        f"server = PageServer({HOST!r}, {port})\n"
        "server.routes['/page.html'] = Reply(headers={'Content-Type': 'text/html; charset=utf-8'},\n"
        f"                                   body={PAGE.encode()!r})\n"
        "server.routes['/'] = Reply(body=b'ok')\n"
        "with server.running():\n"
        "    server.requests = type('Forget', (list,), {'append': lambda self, item: None})()\n"
        "    threading.Event().wait()\n"
    )
    return [sys.executable, "-c", code]


def github_stand_in_command(port: int) -> list[str]:
    code = (
        "import sys, uvicorn\n"
        "from harness.fake_github import FakeGitHub\n"
        f"fake = FakeGitHub(valid_tokens={{{FAKE_GITHUB_TOKEN!r}}}); fake.reset(); fake.slow_release.set()\n"
        "app = fake.app()\n"
        "async def clearing(scope, receive, send):\n"
        "    fake.received.clear()  # a benchmark sends thousands of requests: keep no history\n"
        "    await app(scope, receive, send)\n"
        f"uvicorn.run(clearing, host={HOST!r}, port={port}, log_level='warning', access_log=False)\n"
    )
    return [sys.executable, "-c", code]


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL with the test databases (harness/postgres.py); its URL."""
    from harness.postgres import Cluster, create_databases, run_async, start_cluster

    server = start_cluster(max_connections="100")
    try:
        run_async(create_databases(server))
        yield Cluster(server).app_url()
    finally:
        server.destroy()


@contextlib.contextmanager
def workloads(names: tuple[str, ...] = SERVICE_NAMES) -> Iterator[dict[str, Workload]]:
    """Start every backend the named services need; yields how to run and call each service."""
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcp-bench-")))
        (root / "bench.txt").write_text(("0123456789abcdef" * 4 + "\n") * 63 + "x" * 4, encoding="utf-8")
        found: dict[str, Workload] = {}
        if "filesystem" in names:
            found["filesystem"] = Workload(
                "filesystem",
                {"ALLOWED_PATHS": f"{root}:ro"},
                "read_file",
                {"path": "bench.txt"},
                "4 KiB file, temporary directory",
            )
        if "postgres" in names:
            url = stack.enter_context(postgres_cluster())
            found["postgres"] = Workload(
                "postgres",
                {"DATABASE_URL": url},
                "execute_sql",
                {"query": "SELECT 1"},
                "real PostgreSQL, pool of 5",
            )
        if "fetch" in names:
            port = free_port()
            stack.enter_context(backend("page server", page_server_command(port), port))
            found["fetch"] = Workload(
                "fetch",
                {"FETCH_ALLOWED_HOSTS": HOST, "FETCH_IGNORE_ROBOTS": "true"},
                "fetch",
                {"url": f"http://{HOST}:{port}/page.html"},
                "2 KB page, loopback page server",
            )
        if "github" in names:
            port = free_port()
            stack.enter_context(backend("GitHub stand-in", github_stand_in_command(port), port))
            found["github"] = Workload(
                "github",
                {"GITHUB_TOKEN": FAKE_GITHUB_TOKEN, "GITHUB_API_URL": f"http://{HOST}:{port}"},
                "get_repository",
                {"repo": "octo-org/hello-world"},
                "GitHub API stand-in, 3 API requests per call",
            )
        if "monitoring" in names:
            found["monitoring"] = Workload(
                "monitoring", {}, "get_system_metrics", {}, "none (samples CPU for 0.25 s)"
            )
        yield found


def service_env(workload: Workload, **extra: str) -> dict[str, str]:
    return {"MCP_LOG_LEVEL": "WARNING", **workload.env, **extra}


def call_once(port: int, workload: Workload) -> dict[str, Any]:
    """One tools/call over /rpc; returns the result (raises if the call failed)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": workload.tool, "arguments": workload.arguments},
    }
    response = httpx.post(f"http://{HOST}:{port}/rpc", json=body, timeout=30)
    result: dict[str, Any] = response.json()["result"]
    if result.get("isError"):
        raise RuntimeError(f"{workload.name} {workload.tool}: {result['content'][0]['text'][:300]}")
    return result


def tree_rss(process: psutil.Process) -> int:
    """RSS of a service's processes together: its own and its children's (fetch's conversion processes).

    A page shared by a parent and its forked child counts in each, so this is an upper bound.
    """
    total = process.memory_info().rss
    for descendant in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a conversion process that just ended
            total += descendant.memory_info().rss
    return total


class PeakRss:
    """Samples the RSS of a service's processes in a thread; ``peak_mb`` is the highest value seen."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, tree_rss(self.process))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def run(seconds: float, names: tuple[str, ...] = SERVICE_NAMES) -> list[ServiceResult]:
    results: list[ServiceResult] = []
    print(HEADER, flush=True)
    with workloads(names) as found:
        for name in names:
            workload = found[name]
            with ServiceProcess(name, service_env(workload)) as service:
                call_once(service.port, workload)  # warm: imports, pools, first connection
                result = ServiceResult(name, workload.tool, workload.backend)
                with PeakRss(service.pid) as rss:
                    result.cells = run_client(
                        measure(name, service.port, ["mcp"], workload.tool, workload.arguments, seconds)
                    )
                result.peak_rss_mb = round(rss.peak_mb, 1)
                print(f"  {name}: peak RSS under load {result.peak_rss_mb} MB", flush=True)
                results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per cell")
    parser.add_argument("--only", nargs="*", choices=SERVICE_NAMES, help="services to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    results = run(args.seconds, tuple(args.only or SERVICE_NAMES))
    if args.json:
        args.json.write_text(json.dumps([result.as_dict() for result in results], indent=2))


if __name__ == "__main__":
    main()
