"""tools/call throughput and latency per transport, against the peers' servers as anchors.

    .venv/bin/python -m bench.transport_bench [--seconds 2.5] [--json out.json]

Targets, each in its own process on a loopback port (the load generator runs in this process):
* ``noop``        a libmcp service whose tool returns at once (the protocol stack alone)
* ``filesystem``  the filesystem service, ``read_file`` of a 4 KiB file
* ``floor``       a bare ASGI app answering the same tools/call with no validation (the floor)
* the anchors, each with the same two tools over Streamable HTTP ``/mcp``, stateless, JSON responses,
  configured as a user would (INFO logging off):
  ``sdk``         the official Python SDK's ``MCPServer`` (bench/reference_server.py)
  ``fastmcp``     fastmcp, from its own venv .tools/fastmcp (bench/fastmcp_server.py, setup.d/74-fastmcp.sh)
  ``ts-sdk``      the official TypeScript SDK on Node (bench/node/server.mjs, setup.d/11-bench-node.sh)
  An anchor that is not installed is skipped with the reason printed.
Transports: ``/mcp`` (Streamable HTTP, handshake era), ``/rpc`` and ``/sse`` (+ ``/messages``), at
concurrency 1, 16 and 64. The /mcp cells of ``noop`` run side by side with the floor's and the anchors'
noop, those of ``filesystem`` with the anchors' read_file (halves in the order A B .. B A), so that their
ratios do not depend on when each ran. Bounded: each cell runs ``--seconds`` after a 0.5 s warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import HEADER, Result, run_client, run_load, run_side_by_side
from harness.http_client import Connection
from harness.processes import HOST, REPO_ROOT, ServiceProcess, free_port

CONCURRENCY = (1, 16, 64)
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}


def module_server(module: str, port: int, *arguments: str) -> ServiceProcess:
    """``python -m MODULE PORT ARGUMENTS...`` (a bench server), ready once it answers anything."""
    command = [sys.executable, "-m", module, str(port), *arguments]
    return ServiceProcess(module, command=command, port=port, ready_statuses=None)


def tool_call_body(counter: Iterator[int], tool: str, arguments: dict[str, Any]) -> bytes:
    request = {
        "jsonrpc": "2.0",
        "id": next(counter),
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    return json.dumps(request).encode()


def post_user(port: int, path: str, tool: str, arguments: dict[str, Any]):
    async def make() -> tuple[Any, Any]:
        connection = await Connection(HOST, port).open()
        counter = itertools.count(1)

        async def call() -> bool:
            response = await connection.request(
                "POST", path, tool_call_body(counter, tool, arguments), HEADERS
            )
            return response.status == 200 and b'"isError":false' in response.body.replace(b" ", b"")

        return call, connection.close

    return make


def sse_user(port: int, tool: str, arguments: dict[str, Any]):
    async def make() -> tuple[Any, Any]:
        stream = await Connection(HOST, port).open()
        assert await stream.open_stream("/sse") == 200
        _, endpoint = await stream.read_event()
        poster = await Connection(HOST, port).open()
        counter = itertools.count(1)

        async def call() -> bool:
            response = await poster.request(
                "POST", endpoint, tool_call_body(counter, tool, arguments), HEADERS
            )
            if response.status != 202:
                return False
            _, data = await stream.read_event()
            return b'"isError":false' in data.encode().replace(b" ", b"")

        async def close() -> None:
            await poster.close()
            await stream.close()

        return call, close

    return make


async def measure(
    label: str,
    port: int,
    transports: list[str],
    tool: str,
    arguments: dict[str, Any],
    seconds: float,
    floor_port: int | None = None,
    beside: list[tuple[str, int]] | None = None,
) -> list[Result]:
    """Every transport at every concurrency. The /mcp cells of the servers in ``beside`` (name, port), and
    of the floor at ``floor_port``, run side by side with this server's (A B .. B A halves), so that their
    ratios do not depend on when each ran."""
    others = [*([("floor", floor_port)] if floor_port is not None else []), *(beside or [])]
    results = []
    for transport in transports:
        for concurrency in CONCURRENCY:
            make = (
                sse_user(port, tool, arguments)
                if transport == "sse"
                else post_user(port, f"/{transport}", tool, arguments)
            )
            if others and transport == "mcp":
                targets = [(f"{label} {tool} /mcp", make)] + [
                    (f"{name} {tool} /mcp", post_user(other, "/mcp", tool, arguments))
                    for name, other in others
                ]
                cells = await run_side_by_side(targets, concurrency, seconds=seconds)
            else:
                cells = [await run_load(f"{label} {tool} /{transport}", make, concurrency, seconds=seconds)]
            for result in cells:
                print(result.row(), flush=True)
            results += cells
    return results


@dataclass(frozen=True)
class Anchor:
    """A peer's server with the bench's two tools, run as ``argv PORT ROOT``; ``missing()`` says why it
    cannot run here (not installed), or is empty."""

    name: str
    argv: tuple[str, ...]
    missing: Callable[[], str] = lambda: ""


FASTMCP_PYTHON = REPO_ROOT / ".tools" / "fastmcp" / "bin" / "python"
NODE_DIR = REPO_ROOT / "bench" / "node"


def _fastmcp_missing() -> str:
    if not FASTMCP_PYTHON.exists():
        return f"{FASTMCP_PYTHON.relative_to(REPO_ROOT)} not found: run scripts/setup.d/74-fastmcp.sh"
    return ""


def _ts_sdk_missing() -> str:
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        return "bench/node has no @modelcontextprotocol/sdk installed: run scripts/setup.d/11-bench-node.sh"
    return ""


ANCHORS = (
    Anchor("sdk", (sys.executable, "-m", "bench.reference_server")),
    Anchor(
        "fastmcp", (str(FASTMCP_PYTHON), str(REPO_ROOT / "bench" / "fastmcp_server.py")), _fastmcp_missing
    ),
    Anchor("ts-sdk", ("node", str(NODE_DIR / "server.mjs")), _ts_sdk_missing),
)


def start_anchors(stack: contextlib.ExitStack, root: str) -> list[tuple[str, int]]:
    """Start every anchor that can run here, each answering a read_file; print why any other is skipped."""
    running = []
    for anchor in ANCHORS:
        reason = anchor.missing()
        if not reason:
            port = free_port()
            try:
                stack.enter_context(
                    ServiceProcess(
                        anchor.name, command=[*anchor.argv, str(port), root], port=port, ready_statuses=None
                    )
                )
                reason = first_call_error(port)
                if not reason:
                    warm(port)
            except RuntimeError as exc:
                reason = str(exc)
        if reason:
            print(f"anchor {anchor.name} skipped: {reason}", flush=True)
        else:
            running.append((anchor.name, port))
    return running


def first_call_error(port: int) -> str:
    """Why a read_file over /mcp did not succeed, or empty when it did."""
    body = tool_call_body(itertools.count(1), "read_file", {"path": "bench.txt"})
    try:
        reply = httpx.post(f"http://{HOST}:{port}/mcp", content=body, headers=HEADERS, timeout=10)
    except httpx.HTTPError as exc:
        return f"read_file over /mcp failed: {exc!r}"
    if reply.status_code != 200 or b'"isError":false' not in reply.content.replace(b" ", b""):
        return f"read_file over /mcp answered {reply.status_code}: {reply.text[:200]}"
    return ""


def warm(port: int) -> None:
    """Both tools at c=16 for a moment, unrecorded: Node's JIT needs thousands of calls to reach its steady
    speed, which the first cells (noop at c=1) would otherwise measure instead."""
    for tool, arguments in (("noop", {}), ("read_file", {"path": "bench.txt"})):
        run_client(run_load("warm", post_user(port, "/mcp", tool, arguments), 16, seconds=1.0, warmup_s=0))


def run(seconds: float) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as root, contextlib.ExitStack() as anchors:
        (Path(root) / "bench.txt").write_text(
            ("0123456789abcdef" * 4 + "\n") * 63 + "x" * 4, encoding="utf-8"
        )
        read_args = {"path": "bench.txt"}
        running = start_anchors(anchors, root)
        print(HEADER, flush=True)
        port, floor_port = free_port(), free_port()
        with module_server("bench.noop_service", port), module_server("bench.floor_server", floor_port):
            results += run_client(
                measure(
                    "libmcp",
                    port,
                    ["mcp", "rpc", "sse"],
                    "noop",
                    {},
                    seconds,
                    floor_port=floor_port,
                    beside=running,
                )
            )
        with ServiceProcess("filesystem", {"ALLOWED_PATHS": f"{root}:ro"}) as filesystem:
            results += run_client(
                measure(
                    "filesystem",
                    filesystem.port,
                    ["mcp", "rpc", "sse"],
                    "read_file",
                    read_args,
                    seconds,
                    beside=running,
                )
            )
    return results


def summarize(results: list[Result]) -> list[str]:
    by_label = {(result.label, result.concurrency): result for result in results}
    lines = []
    pairs = [
        *(("libmcp noop /mcp", f"{anchor.name} noop /mcp") for anchor in ANCHORS),
        *(("filesystem read_file /mcp", f"{anchor.name} read_file /mcp") for anchor in ANCHORS),
        ("libmcp noop /mcp", "floor noop /mcp"),
    ]
    for ours, reference in pairs:
        for concurrency in CONCURRENCY:
            mine, theirs = by_label.get((ours, concurrency)), by_label.get((reference, concurrency))
            if mine and theirs and theirs.rps:
                lines.append(
                    f"{ours} vs {reference} at c={concurrency}: {mine.rps / theirs.rps:.2f}x throughput, "
                    f"p99 {mine.p99_ms:.2f} ms vs {theirs.p99_ms:.2f} ms"
                )
    for anchor in ANCHORS:
        ratios = [
            ratio_of(by_label, ("filesystem read_file /mcp", c), (f"{anchor.name} read_file /mcp", c))
            for c in (16, 64)
        ]
        if None not in ratios:
            lines.append(
                f"filesystem read_file /mcp vs {anchor.name} at c=16/64: "
                + " / ".join(f"{value:.2f}x" for value in ratios)
            )
        else:
            lines.append(f"filesystem read_file /mcp vs {anchor.name}: not measured in this run")
    return lines


def ratio_of(
    by_label: dict[tuple[str, int], Result], mine: tuple[str, int], theirs: tuple[str, int]
) -> float | None:
    ours, reference = by_label.get(mine), by_label.get(theirs)
    return ours.rps / reference.rps if ours and reference and reference.rps else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.5, help="measured seconds per cell")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    results = run(args.seconds)
    print()
    for line in summarize(results):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([result.as_dict() for result in results], indent=2))


if __name__ == "__main__":
    main()
