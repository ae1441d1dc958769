"""What the ASGI app alone costs per tools/call: driven in-process, no sockets, no HTTP parsing.

    .venv/bin/python -m bench.app_cost [--calls 20000]

The same /mcp request goes to the bare floor app and to the noop service's app (call log on, written to
/dev/null) in a child process each. CPU time per call is the process time over ``--calls`` calls after
a warm-up: a figure that barely moves with machine load, unlike calls per second over loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import orjson

from harness.processes import REPO_ROOT

REQUEST = orjson.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "noop", "arguments": {}}}
)


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            (b"mcp-protocol-version", b"2025-11-25"),
            (b"content-length", str(len(REQUEST)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def drive(app: Any, calls: int) -> float:
    """Microseconds of process time per call."""
    message = {"type": "http.request", "body": REQUEST, "more_body": False}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(reply: dict[str, Any]) -> None:
        sent.append(reply)

    for _ in range(500):
        await app(scope(), receive, send)
    if b'"isError":false' not in sent[-1]["body"]:
        raise RuntimeError(f"unexpected answer: {sent[-1]!r}")
    started = time.process_time()
    for _ in range(calls):
        await app(scope(), receive, send)
        sent.clear()
    return (time.process_time() - started) / calls * 1e6


def measure_in_this_process(target: str, calls: int) -> float:
    import uvloop

    if target == "floor":
        from bench.floor_server import app
    else:
        from bench.noop_service import service
        from libmcp import build_server, create_app
        from libmcp.observability import configure_logging

        sys.stdout = open(os.devnull, "w")  # the call log goes nowhere during the run
        configure_logging(service.name, "INFO")
        app = create_app(build_server(service, environ={"MCP_ENV_FILE": os.devnull}))
    return uvloop.run(drive(app, calls))


def run(calls: int = 20_000) -> dict[str, float]:
    """µs per call for ``floor`` and ``libmcp noop``, each measured in a fresh child process."""
    results = {}
    for target in ("floor", "libmcp noop"):
        child = subprocess.run(
            [sys.executable, "-m", "bench.app_cost", "--child", target, "--calls", str(calls)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        results[target] = float(child.stderr.strip().splitlines()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(f"{measure_in_this_process(args.child, args.calls):.2f}", file=sys.stderr)
        return
    results = run(args.calls)
    for target, micros in results.items():
        print(f"{target}: {micros:.1f} us of CPU per call in-process")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
