"""Large reads: MB/s of file the filesystem service delivers through ``read_file``, against nginx.

    .venv/bin/python -m bench.large_read_bench [--seconds 3] [--sizes [4k] 256k 4m] [--json out.json]
                                               [--text source|ascii|astral] [--baseline-tree DIR]

The filesystem service runs as ``mcp-sse serve filesystem`` (a child process on loopback, one worker
process, as in a container) over a temporary root holding source-like UTF-8 text files of 256 KiB and
4 MiB (quotes, backslashes, tabs and newlines JSON has to escape, and some non-ASCII characters;
``--text ascii`` leaves those out, ``--text astral`` adds an emoji, which CPython stores at 4 bytes a
character and so decodes several times slower; ``--sizes 4k`` shows what any call costs). The load
generator here calls ``read_file`` over ``POST /mcp`` (2025-06-18 headers, stateless) at concurrency 1
and 4, and reports per cell: MB/s of file delivered (file bytes x calls / s), calls/s, p50/p99 latency,
and the CPU seconds the server and this client spent per GB of file delivered (psutil).

Before the load, one answer per file is checked whole: its text block and ``structuredContent.content``
are the file's text, and ``structuredContent`` validates against the tool's ``outputSchema``.

The anchor is nginx (Debian's ``nginx-light``, when ``nginx`` is on the PATH: one process, sendfile)
serving the same files to the same client. ``--baseline-tree DIR`` also runs the service from another
source tree (e.g. ``git archive`` of an older commit), each cell in halves ordered A B B A against this
tree, so that a before/after ratio does not depend on the drift of a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import psutil

from bench.loadgen import percentile, run_client
from harness.processes import HOST, REPO_ROOT, ServiceProcess, free_port

CONCURRENCY = (1, 4)
SIZES = {"4k": 4 * 1024, "256k": 256 * 1024, "4m": 4 * 1024 * 1024}
# What a run reads unless told (4k shows what a call costs whatever its size).
DEFAULT_SIZES = ("256k", "4m")
MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}
# What every successful tools/call answer ends with: "isError" is the result's last key.
OK_ENDING = b'"isError":false}}'

Call = Callable[[], Awaitable[bool]]


# The files ------------------------------------------------------------------------------------------

SOURCE_LINES = (
    "class Renderer{n}:",
    '    """Join items with a separator, quoting each: "a", "b" \u2014 caf\u00e9, na\u00efve."""',
    "",
    '    def render(self, items: list[str], *, sep: str = "\\n") -> str:',
    '        quoted = [f\'"{{item}}"\' for item in items if item]  # "quoted" \\ escaped',
    '\t\tpath = r"C:\\Users\\build\\{n}\\out.txt"  # a Windows path, tab-indented',
    "        if not quoted:",
    '            raise ValueError(f"no items to render in {{self!r}} (call {n})")',
    "        message = '\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 {n}: \u00fcber \u20ac'",
    '        return sep.join(quoted) + "\\t" + str({n} * 3.14159) + message',
    "",
    "",
)
# What the text is made of: "source" above; "ascii" without its non-ASCII characters; "astral" with a
# character outside the BMP every block, which makes CPython hold the whole text at 4 bytes a character.
TEXT_KINDS = ("source", "ascii", "astral")


def source_text(size: int, kind: str = "source") -> str:
    """Exactly ``size`` bytes of UTF-8 that reads like source code (and ends with a newline)."""
    templates = list(SOURCE_LINES)
    if kind == "ascii":
        templates = [line.encode("ascii", "replace").decode() for line in templates]
    elif kind == "astral":
        templates.append("# \U0001f600 done")
    lines: list[str] = []
    used = 0
    for n in itertools.count():
        for template in templates:
            line = template.format(n=n) + "\n"
            lines.append(line)
            used += len(line.encode())
        if used >= size:
            break
    data = "".join(lines).encode()[: size - 1]
    text = data.decode("utf-8", errors="ignore")  # a multi-byte character cut in two at the end
    return text + "#" * (size - 1 - len(text.encode())) + "\n"


# Processes ------------------------------------------------------------------------------------------


def filesystem_service(root: Path, port: int, tree: Path) -> ServiceProcess:
    """The filesystem service of source tree ``tree`` serving ``root`` read-only, large reads allowed."""
    # Trees from before the fleet/ package ran the CLI as services.cli.
    cli = "fleet.cli" if (tree / "fleet" / "cli.py").exists() else "services.cli"
    env = {
        "PYTHONPATH": str(tree),
        "MCP_HOST": HOST,
        "MCP_PORT": str(port),
        "MCP_METRICS_PORT": "0",
        "MCP_LOG_LEVEL": "WARNING",
        "ALLOWED_PATHS": f"{root}:ro",
        "FILESYSTEM_MAX_READ_BYTES": str(2 * max(SIZES.values())),
    }
    command = [sys.executable, "-m", cli, "serve", "filesystem"]
    return ServiceProcess("filesystem", env, command=command, port=port, cwd=tree)


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type text/plain;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen {host}:{port};
        root {root};
    }}
}}
"""


@contextlib.contextmanager
def nginx(root: Path, port: int) -> Iterator[int | None]:
    """nginx serving ``root`` on ``port`` (yields its pid), or ``None`` when there is no nginx binary."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as work:
        conf = Path(work) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=work, host=HOST, port=port, root=root))
        command = [binary, "-c", str(conf), "-p", work]
        with ServiceProcess(
            "nginx", command=command, port=port, health_path="/", ready_statuses=None
        ) as server:
            yield server.pid


# The client -----------------------------------------------------------------------------------------


class Exchange(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a request and counts the answer's body as it comes.

    A body of megabytes is neither joined nor kept: only its length, its first bytes and its last ones,
    so the client's own cost per GB stays small beside the server's.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, int, bytes]] | None = None
        self.head = bytearray()
        self.status = 0
        self.remaining = -1
        self.length = 0
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self.remaining < 0:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line, *header_lines = bytes(self.head[:end]).split(b"\r\n")
            self.status = int(status_line.split()[1])
            self.length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in header_lines
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            self.remaining = self.length
            data = bytes(self.head[end + 4 :])
            self.head = bytearray()
        self.remaining -= len(data)
        self.tail = (self.tail + data[-len(OK_ENDING) :])[-len(OK_ENDING) :]
        if self.remaining <= 0 and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.status, self.length, self.tail))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def request(self, raw: bytes) -> tuple[int, int, bytes]:
        """Send one whole request; the answer's status, body length and last bytes."""
        assert self.transport is not None
        self.remaining, self.tail = -1, b""
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


def mcp_request(port: int, request_id: int, path: str) -> bytes:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "read_file", "arguments": {"path": path}},
        }
    ).encode()
    headers = "".join(f"{key}: {value}\r\n" for key, value in MCP_HEADERS.items())
    head = f"POST /mcp HTTP/1.1\r\nHost: {HOST}:{port}\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def get_request(port: int, path: str) -> bytes:
    return f"GET /{path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()


async def mcp_user(port: int, path: str) -> tuple[Call, Callable[[], None]]:
    _, exchange = await asyncio.get_running_loop().create_connection(Exchange, HOST, port)
    requests = (mcp_request(port, request_id, path) for request_id in itertools.count(1))

    async def call() -> bool:
        status, _, tail = await exchange.request(next(requests))
        return status == 200 and tail == OK_ENDING

    assert exchange.transport is not None
    return call, exchange.transport.close


async def file_user(port: int, path: str, size: int) -> tuple[Call, Callable[[], None]]:
    _, exchange = await asyncio.get_running_loop().create_connection(Exchange, HOST, port)
    raw = get_request(port, path)

    async def call() -> bool:
        status, length, _ = await exchange.request(raw)
        return status == 200 and length == size

    assert exchange.transport is not None
    return call, exchange.transport.close


# Measuring ------------------------------------------------------------------------------------------


@dataclass
class Cell:
    target: str
    file: str
    file_bytes: int
    concurrency: int
    calls: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    client_cpu_s: float
    all_calls: int  # the warm-up's too: the CPU figures cover them

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.calls_per_s * self.file_bytes / 1e6

    def cpu_per_gb(self, cpu_s: float) -> float:
        delivered = self.all_calls * self.file_bytes / 1e9
        return cpu_s / delivered if delivered else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "calls_per_s": self.calls_per_s,
            "mb_per_s": self.mb_per_s,
            "server_cpu_s_per_gb": self.cpu_per_gb(self.server_cpu_s),
            "client_cpu_s_per_gb": self.cpu_per_gb(self.client_cpu_s),
        }

    def row(self) -> str:
        return (
            f"| {self.target} | {self.file} | {self.concurrency} | {self.mb_per_s:,.0f} | "
            f"{self.calls_per_s:,.1f} | {self.p50_ms:.2f} | {self.p99_ms:.2f} | "
            f"{self.cpu_per_gb(self.server_cpu_s):.2f} | {self.cpu_per_gb(self.client_cpu_s):.2f} | "
            f"{self.errors} |"
        )

    def merged(self, other: Cell) -> Cell:
        """Two halves of one cell as one (latency percentiles: the mean of the halves' own)."""
        return Cell(
            self.target,
            self.file,
            self.file_bytes,
            self.concurrency,
            self.calls + other.calls,
            self.errors + other.errors,
            self.seconds + other.seconds,
            (self.p50_ms + other.p50_ms) / 2,
            (self.p99_ms + other.p99_ms) / 2,
            self.server_cpu_s + other.server_cpu_s,
            self.client_cpu_s + other.client_cpu_s,
            self.all_calls + other.all_calls,
        )


HEADER = (
    "| target | file | concurrency | MB/s of file | calls/s | p50 ms | p99 ms | server CPU s/GB | "
    "client CPU s/GB | errors |\n|---|---|---|---|---|---|---|---|---|---|"
)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def measure(
    target: str,
    file: str,
    file_bytes: int,
    make_user: Callable[[], Awaitable[tuple[Call, Callable[[], None]]]],
    concurrency: int,
    server_pid: int,
    seconds: float,
    warmup_s: float = 0.5,
) -> Cell:
    """``concurrency`` closed-loop users for ``warmup_s`` + ``seconds``; the window after warm-up counts."""
    users = [await make_user() for _ in range(concurrency)]
    server, client = psutil.Process(server_pid), psutil.Process()
    server_cpu, client_cpu = cpu_seconds(server), cpu_seconds(client)
    latencies: list[float] = []
    errors = all_calls = 0
    measuring = False
    stop_at = time.perf_counter() + warmup_s + seconds

    async def user_loop(call: Call) -> None:
        nonlocal errors, all_calls
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            ok = await call()
            all_calls += 1
            if measuring:
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1

    tasks = [asyncio.create_task(user_loop(call)) for call, _ in users]
    await asyncio.sleep(warmup_s)
    measuring = True
    window_start = time.perf_counter()
    await asyncio.gather(*tasks)
    window = time.perf_counter() - window_start
    server_cpu, client_cpu = cpu_seconds(server) - server_cpu, cpu_seconds(client) - client_cpu
    for _, close in users:
        close()
    ordered = sorted(latencies)
    return Cell(
        target,
        file,
        file_bytes,
        concurrency,
        len(ordered),
        errors,
        window,
        percentile(ordered, 0.50) * 1000,
        percentile(ordered, 0.99) * 1000,
        server_cpu,
        client_cpu,
        all_calls,
    )


def check_answer(port: int, path: str, text: str) -> None:
    """One answer checked whole: both copies of the text are the file's, and the output schema holds."""
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=MCP_HEADERS, timeout=30) as client:
        listed = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).json()
        schema = next(tool for tool in listed["result"]["tools"] if tool["name"] == "read_file")[
            "outputSchema"
        ]
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "read_file", "arguments": {"path": path}},
        }
        result = client.post("/mcp", json=call).json()["result"]
    if result["isError"] or result["content"] != [{"type": "text", "text": text}]:
        raise RuntimeError(f"read_file of {path}: the text block is not the file's text")
    if result["structuredContent"]["content"] != text:
        raise RuntimeError(f"read_file of {path}: structuredContent.content is not the file's text")
    jsonschema.validate(result["structuredContent"], schema)


# The run --------------------------------------------------------------------------------------------


def run(
    seconds: float,
    sizes: tuple[str, ...] = DEFAULT_SIZES,
    baseline_tree: Path | None = None,
    text_kind: str = "source",
) -> dict[str, Any]:
    """Every target, file and concurrency; the cells (as dicts) and whether nginx was there."""
    cells: list[Cell] = []
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="mcp-large-read-") as directory:
        root = Path(directory)
        texts = {name: source_text(SIZES[name], text_kind) for name in sizes}
        for name, text in texts.items():
            (root / f"read_{name}.txt").write_text(text, encoding="utf-8")
        with contextlib.ExitStack() as stack:
            trees = {"filesystem": REPO_ROOT} | ({"baseline": baseline_tree} if baseline_tree else {})
            ports = {label: free_port() for label in trees}
            pids = {
                label: stack.enter_context(filesystem_service(root, ports[label], tree)).pid
                for label, tree in trees.items()
            }
            for label in trees:
                for name, text in texts.items():
                    check_answer(ports[label], f"read_{name}.txt", text)
            for name in sizes:
                for concurrency in CONCURRENCY:
                    halves: dict[str, Cell] = {}
                    order = [*trees, *reversed(trees)] if baseline_tree else list(trees)
                    for label in order:

                        def make(port: int = ports[label], path: str = f"read_{name}.txt") -> Any:
                            return mcp_user(port, path)

                        share = seconds / 2 if baseline_tree else seconds
                        cell = run_client(
                            measure(
                                f"{label} read_file", name, SIZES[name], make, concurrency, pids[label], share
                            )
                        )
                        halves[label] = halves[label].merged(cell) if label in halves else cell
                    for cell in halves.values():
                        print(cell.row(), flush=True)
                        cells.append(cell)
        port = free_port()
        with nginx(root, port) as pid:
            if pid is None:
                print("| nginx | (not installed: apt-get install nginx-light for the anchor) |", flush=True)
            else:
                for name in sizes:
                    for concurrency in CONCURRENCY:

                        def make_file_user(path: str = f"read_{name}.txt", size: int = SIZES[name]) -> Any:
                            return file_user(port, path, size)

                        cell = run_client(
                            measure("nginx", name, SIZES[name], make_file_user, concurrency, pid, seconds)
                        )
                        print(cell.row(), flush=True)
                        cells.append(cell)
    for line in compared(cells):
        print(line, flush=True)
    return {"text": text_kind, "nginx": pid is not None, "cells": [cell.as_dict() for cell in cells]}


def compared(cells: list[Cell]) -> list[str]:
    """This tree against the baseline tree and against nginx, cell by cell."""
    by_key = {(cell.target.split()[0], cell.file, cell.concurrency): cell for cell in cells}
    lines = []
    for (target, file, concurrency), cell in by_key.items():
        if target != "filesystem":
            continue
        for other in ("baseline", "nginx"):
            anchor = by_key.get((other, file, concurrency))
            if anchor and anchor.mb_per_s and cell.server_cpu_s:
                cpu_ratio = cell.cpu_per_gb(cell.server_cpu_s) / anchor.cpu_per_gb(anchor.server_cpu_s)
                lines.append(
                    f"{file} c{concurrency}: {cell.mb_per_s / anchor.mb_per_s:.2f}x the MB/s of {other}, "
                    f"{cpu_ratio:.2f}x its server CPU per GB"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument(
        "--sizes", nargs="*", choices=tuple(SIZES), default=list(DEFAULT_SIZES), help="files to read"
    )
    parser.add_argument(
        "--baseline-tree", type=Path, help="also run the service from this source tree, A B B A"
    )
    parser.add_argument("--text", choices=TEXT_KINDS, default="source", help="what the files hold")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    results = run(args.seconds, tuple(args.sizes), args.baseline_tree, args.text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
