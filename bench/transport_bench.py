"""tools/call throughput and latency per transport, against the official SDK server as the reference.

    .venv/bin/python -m bench.transport_bench [--seconds 2.5] [--json out.json]

Targets, each in its own process on a loopback port (the load generator runs in this process):
* ``noop``        a libmcp service whose tool returns at once (the protocol stack alone)
* ``filesystem``  the filesystem service, ``read_file`` of a 4 KiB file
* ``sdk``         the official SDK's ``MCPServer`` (stateless, JSON responses) with the same two tools
* ``floor``       a bare ASGI app answering the same tools/call with no validation (the floor)
Transports: ``/mcp`` (Streamable HTTP, handshake era), ``/rpc`` and ``/sse`` (+ ``/messages``), at
concurrency 1, 16 and 64. Bounded: each cell runs ``--seconds`` after a 0.5 s warm-up.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.loadgen import HEADER, Result, run_client, run_load, run_side_by_side
from harness.http_client import Connection
from harness.processes import HOST, ServiceProcess, free_port

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
) -> list[Result]:
    """Every transport at every concurrency; with ``floor_port``, the floor's /mcp cells run side by side
    with this server's (A B B A halves), so that their ratio does not depend on when each ran."""
    results = []
    for transport in transports:
        for concurrency in CONCURRENCY:
            make = (
                sse_user(port, tool, arguments)
                if transport == "sse"
                else post_user(port, f"/{transport}", tool, arguments)
            )
            if floor_port is not None and transport == "mcp":
                targets = [
                    (f"{label} {tool} /mcp", make),
                    (f"floor {tool} /mcp", post_user(floor_port, "/mcp", tool, arguments)),
                ]
                cells = await run_side_by_side(targets, concurrency, seconds=seconds)
            else:
                cells = [await run_load(f"{label} {tool} /{transport}", make, concurrency, seconds=seconds)]
            for result in cells:
                print(result.row(), flush=True)
            results += cells
    return results


def run(seconds: float) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "bench.txt").write_text(
            ("0123456789abcdef" * 4 + "\n") * 63 + "x" * 4, encoding="utf-8"
        )
        read_args = {"path": "bench.txt"}
        print(HEADER, flush=True)
        port, floor_port = free_port(), free_port()
        with module_server("bench.noop_service", port), module_server("bench.floor_server", floor_port):
            results += run_client(
                measure("libmcp", port, ["mcp", "rpc", "sse"], "noop", {}, seconds, floor_port=floor_port)
            )
        with ServiceProcess("filesystem", {"ALLOWED_PATHS": f"{root}:ro"}) as filesystem:
            results += run_client(
                measure("filesystem", filesystem.port, ["mcp", "rpc", "sse"], "read_file", read_args, seconds)
            )
        port = free_port()
        with module_server("bench.reference_server", port, root):
            results += run_client(measure("sdk", port, ["mcp"], "noop", {}, seconds))
            results += run_client(measure("sdk", port, ["mcp"], "read_file", read_args, seconds))
    return results


def summarize(results: list[Result]) -> list[str]:
    by_label = {(result.label, result.concurrency): result for result in results}
    lines = []
    pairs = (
        ("libmcp noop /mcp", "sdk noop /mcp"),
        ("filesystem read_file /mcp", "sdk read_file /mcp"),
        ("libmcp noop /mcp", "floor noop /mcp"),
    )
    for ours, reference in pairs:
        for concurrency in CONCURRENCY:
            mine, theirs = by_label.get((ours, concurrency)), by_label.get((reference, concurrency))
            if mine and theirs and theirs.rps:
                lines.append(
                    f"{ours} vs {reference} at c={concurrency}: {mine.rps / theirs.rps:.2f}x throughput, "
                    f"p99 {mine.p99_ms:.2f} ms vs {theirs.p99_ms:.2f} ms"
                )
    return lines


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
