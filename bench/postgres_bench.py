"""execute_sql over /mcp against raw asyncpg doing the same work: the service's overhead per call.

    .venv/bin/python -m bench.postgres_bench [--seconds 3] [--pool-size 16] [--json out.json]

A throwaway PostgreSQL (``services.postgres.local``, the machine's binaries) holds the sample schema;
the postgres service runs as ``mcp-sse serve postgres`` in a child process (read-only mode, the
default); the load generator runs in this process. Two queries, at concurrency 1 and 16:

* ``SELECT 1``
* a 1,000-row select (integer, text and timestamptz columns: the rows go through the JSON conversion)

First the service's CPU time per call is measured over sequential calls (from /proc: less dependent on
how busy the machine is than latencies), then latency and throughput per cell, then the paired overhead.

Each is measured through the service (``tools/call`` of ``execute_sql``, Streamable HTTP, handshake era
JSON mode) and through raw asyncpg (one connection per virtual user, ``fetch`` with its statement cache):
the floor. Bounded: each cell runs ``--seconds`` after a 0.5 s warm-up, loopback only.

The service's cell and the floor's run side by side, in halves in the order A B B A, so that a change
of background load during them weighs on both alike. The paired rows at concurrency 1 go further: one
user alternates a service call and an asyncpg call for ``--seconds`` (each call then starts with caches
the other one used, which costs the service, the larger of the two, more).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.loadgen import HEADER, Result, percentile, run_client, run_side_by_side
from bench.transport_bench import HEADERS, tool_call_body
from harness.http_client import Connection
from harness.processes import HOST, ServiceProcess
from services.postgres.local import LocalPostgres, find_binaries, load_sample

CONCURRENCY = (1, 16)
QUERIES = {
    "SELECT 1": "SELECT 1",
    "1000 rows": (
        "SELECT g AS id, 'item ' || g AS name, "
        "timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' AS at "
        "FROM generate_series(1, 1000) g"
    ),
}


def service_user(port: int, query: str):
    arguments: dict[str, Any] = {"query": query}

    async def make() -> tuple[Any, Any]:
        connection = await Connection(HOST, port).open()
        counter = itertools.count(1)

        async def call() -> bool:
            body = tool_call_body(counter, "execute_sql", arguments)
            response = await connection.request("POST", "/mcp", body, HEADERS)
            # isError closes the result: look at the tail first, not through a 100 KB body every call.
            return response.status == 200 and (
                b'"isError":false' in response.body[-64:]
                or b'"isError":false' in response.body.replace(b" ", b"")
            )

        return call, connection.close

    return make


def asyncpg_user(url: str, query: str):
    async def make() -> tuple[Any, Any]:
        connection = await asyncpg.connect(url)

        async def call() -> bool:
            rows = await connection.fetch(query)
            return len(rows) > 0

        return call, connection.close

    return make


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_per_call(pid: int, port: int, query: str, calls: int) -> float:
    """Milliseconds of service CPU per execute_sql call, over ``calls`` sequential calls: unlike latency,
    this does not depend on how busy the machine is."""
    call, close = await service_user(port, query)()
    for _ in range(20):
        await call()
    before = cpu_seconds(pid)
    for _ in range(calls):
        assert await call()
    spent = cpu_seconds(pid) - before
    await close()
    return spent / calls * 1000


async def paired(port: int, url: str, name: str, seconds: float, warmup_s: float = 0.5) -> list[Result]:
    """One user alternating a service call and an asyncpg call of the same query for ``seconds``: the
    two results (labelled ``..., paired``) saw the same machine at the same time."""
    query = QUERIES[name]
    service_call, close_service = await service_user(port, query)()
    asyncpg_call, close_asyncpg = await asyncpg_user(url, query)()
    latencies: dict[str, list[float]] = {"service": [], "asyncpg": []}
    errors = 0
    measure_from = time.perf_counter() + warmup_s
    try:
        while (started := time.perf_counter()) < measure_from + seconds:
            ok = await service_call()
            middle = time.perf_counter()
            ok = await asyncpg_call() and ok
            if started >= measure_from:
                latencies["service"].append(middle - started)
                latencies["asyncpg"].append(time.perf_counter() - middle)
                errors += 0 if ok else 1
    finally:
        await close_service()
        await close_asyncpg()
    results = []
    for target, values in latencies.items():
        ordered = sorted(values)
        results.append(
            Result(
                f"{target} {name}, paired",
                1,
                len(ordered),
                errors,
                seconds,
                percentile(ordered, 0.50) * 1000,
                percentile(ordered, 0.95) * 1000,
                percentile(ordered, 0.99) * 1000,
            )
        )
    return results


async def measure(port: int, url: str, seconds: float, pid: int) -> list[Result]:
    for name, query in QUERIES.items():
        calls = 1000 if name == "SELECT 1" else 200
        print(
            f"service CPU per call, {name}: {await cpu_per_call(pid, port, query, calls):.2f} ms", flush=True
        )
    print(HEADER, flush=True)
    results = []
    for name, query in QUERIES.items():
        for concurrency in CONCURRENCY:
            targets = [
                (f"service {name}", service_user(port, query)),
                (f"asyncpg {name}", asyncpg_user(url, query)),
            ]
            for result in await run_side_by_side(targets, concurrency, seconds=seconds):
                print(result.row(), flush=True)
                results.append(result)
    for name in QUERIES:
        for result in await paired(port, url, name, seconds):
            print(result.row(), flush=True)
            results.append(result)
    return results


def run(seconds: float, pool_size: int) -> list[Result]:
    bin_dir = find_binaries()
    if bin_dir is None:
        sys.exit("PostgreSQL binaries not found: apt-get install postgresql")
    server = LocalPostgres(bin_dir, config={"max_connections": "100"}).start()
    try:
        url = asyncio.run(load_sample(server.url(), create_pg_stat_statements=False))
        env = {"DATABASE_URL": url, "POSTGRES_POOL_MAX_SIZE": str(pool_size)}
        with ServiceProcess("postgres", env) as postgres:
            return run_client(measure(postgres.port, url, seconds, postgres.pid))
    finally:
        server.destroy()


def summarize(results: list[Result]) -> list[str]:
    by_label = {(result.label, result.concurrency): result for result in results}
    lines = []
    cells = [(name, concurrency, "") for name in QUERIES for concurrency in CONCURRENCY]
    cells += [(name, 1, ", paired") for name in QUERIES]
    for name, concurrency, paired_ in cells:
        ours = by_label.get((f"service {name}{paired_}", concurrency))
        floor = by_label.get((f"asyncpg {name}{paired_}", concurrency))
        if ours and floor:
            line = (
                f"{name} at c={concurrency}{paired_}: service overhead "
                f"p50 {ours.p50_ms - floor.p50_ms:+.2f} ms, p99 {ours.p99_ms - floor.p99_ms:+.2f} ms"
            )
            if not paired_:
                line += f"; throughput {ours.rps:,.0f} vs {floor.rps:,.0f} req/s"
            lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument("--pool-size", type=int, default=16, help="POSTGRES_POOL_MAX_SIZE of the service")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    results = run(args.seconds, args.pool_size)
    print()
    for line in summarize(results):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([result.as_dict() for result in results], indent=2))


if __name__ == "__main__":
    main()
