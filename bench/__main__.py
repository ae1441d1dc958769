"""``make bench``: every benchmark in one run, then docs/PERFORMANCE.md with its plots.

    .venv/bin/python -m bench [--quick] [--only SECTION ...] [--skip SECTION ...]

Sections, in order (a few minutes in all on a 2-core machine; every cell is bounded in time):
transport (tools/call per transport against the SDK server and the bare floor), services (per service
on its backend), resources (cold start, idle RSS, 1,000 idle SSE sessions), postgres (execute_sql
against raw asyncpg), fetch (ours against the reference fetch server), soak (load with faults),
profile (py-spy on the noop service under load), attack (each class of hostile load of issue 16 against
its service, with a well-behaved client beside it). The raw results go to docs/performance/results.json;
``python -m bench.report`` redraws the page from them. A run of some sections only (``--only``,
``--skip``) keeps the stored results of the others, so the page still shows every section. A section
that fails is reported on the page and in the exit status; the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report

SECTIONS = ("transport", "services", "resources", "postgres", "fetch", "soak", "profile", "attack")


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long each part runs: ``--quick`` halves the cells and shortens the soak."""

    cell_s: float = 1.5
    starts: int = 3
    sessions: int = 1000
    soak_s: float = 30.0
    profile_s: float = 6.0
    attack_s: float = 4.0


QUICK = Budget(cell_s=1.0, starts=1, sessions=1000, soak_s=20.0, profile_s=3.0, attack_s=2.5)


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({model or platform.processor()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def run_transport(budget: Budget) -> Any:
    from bench import transport_bench

    return [result.as_dict() for result in transport_bench.run(budget.cell_s)]


def run_services(budget: Budget) -> Any:
    from bench import service_bench

    return [result.as_dict() for result in service_bench.run(budget.cell_s)]


def run_resources(budget: Budget) -> Any:
    from bench import resources_bench

    imports = resources_bench.import_footprint()
    starts = resources_bench.run_starts(budget.starts)
    sse = resources_bench.run_sse(budget.sessions)
    return {
        "imports": imports,
        "starts": [dataclasses.asdict(s) | {"median_s": s.median_s} for s in starts],
        "sse": dataclasses.asdict(sse) | {"extra_mb": sse.extra_mb, "kb_per_session": sse.kb_per_session},
    }


def run_postgres(budget: Budget) -> Any:
    if not (report.REPO_ROOT / "bench" / "postgres_bench.py").exists():
        return None
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "postgres.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.postgres_bench",
                "--seconds",
                str(budget.cell_s),
                "--json",
                str(out),
            ],
            cwd=report.REPO_ROOT,
            check=True,
            timeout=600,
        )
        return json.loads(out.read_text())


def run_fetch(budget: Budget) -> Any:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.fetch_bench", "--quick"],
        cwd=report.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(completed.stdout[-3000:], completed.stderr[-2000:], sep="\n", flush=True)
    if completed.returncode != 0:
        raise RuntimeError(f"fetch_bench exited {completed.returncode}: {completed.stderr[-1000:]}")
    table = completed.stdout.find("| page |")
    return completed.stdout[table:] if table >= 0 else completed.stdout[-3000:]


def run_soak(budget: Budget) -> Any:
    """The fault-injection soak (tests/faults/soak.py) in a subprocess; its report, passed or not."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "soak.json"
        completed = subprocess.run(
            [sys.executable, "-m", "tests.faults.soak", "--seconds", str(budget.soak_s), "--json", str(out)],
            cwd=report.REPO_ROOT,
            timeout=budget.soak_s + 600,
            check=False,
        )
        if not out.exists():
            raise RuntimeError(f"the soak exited {completed.returncode} without a report")
        return json.loads(out.read_text())


def run_profile(budget: Budget) -> Any:
    """Server CPU per call (independent of the machine's load), then py-spy on the noop service under load."""
    from bench import app_cost
    from bench.loadgen import run_client, run_load
    from bench.transport_bench import module_server, post_user
    from harness.processes import free_port

    rate, concurrency = 200, 16
    cpu = cpu_per_call(budget.profile_s / 2, concurrency)
    in_process = app_cost.run()
    port = free_port()
    with (
        module_server("bench.noop_service", port) as noop,
        tempfile.TemporaryDirectory() as directory,
    ):
        raw = Path(directory) / "profile.txt"
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(noop.pid),
                "--duration",
                str(int(budget.profile_s)),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(raw),
                "--nonblocking",
                "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        run_client(
            run_load(
                "profile",
                post_user(port, "/mcp", "noop", {}),
                concurrency,
                seconds=budget.profile_s,
                warmup_s=0.2,
            )
        )
        spy.wait(timeout=60)
        stacks = raw.read_text().splitlines() if raw.exists() else []
    return summarize_profile(stacks) | {
        "rate": rate,
        "concurrency": concurrency,
        "seconds": budget.profile_s,
        "cpu_per_call": cpu,
        "app_cost": in_process,
    }


def cpu_per_call(seconds: float, concurrency: int) -> list[dict[str, Any]]:
    """Server CPU time (user + system, from psutil) per tools/call of the noop tool, per target and transport.

    CPU per call does not depend on how much CPU the machine has left, unlike calls per second: on a
    busy shared machine it is the fairer way to compare a stack with the floor and the SDK server.
    """
    import psutil

    from bench.loadgen import run_client, run_load
    from bench.transport_bench import module_server, post_user
    from harness.processes import REPO_ROOT as ROOT
    from harness.processes import free_port

    targets = [
        ("floor", "bench.floor_server", ["/mcp"]),
        ("libmcp noop", "bench.noop_service", ["/mcp", "/rpc"]),
        ("sdk", "bench.reference_server", ["/mcp"]),
    ]
    rows = []
    for name, module, paths in targets:
        port = free_port()
        extra = [str(ROOT)] if name == "sdk" else []
        with module_server(module, port, *extra) as child:
            server = psutil.Process(child.pid)
            for path in paths:
                make = post_user(port, path, "noop", {})
                run_client(run_load("warm", make, concurrency, seconds=0.5, warmup_s=0))
                before = server.cpu_times()
                result = run_client(run_load(name, make, concurrency, seconds=seconds, warmup_s=0))
                after = server.cpu_times()
                used = (after.user - before.user) + (after.system - before.system)
                rows.append(
                    {
                        "target": f"{name} {path}",
                        "calls": result.requests,
                        "cpu_us_per_call": 1e6 * used / max(1, result.requests),
                        "rps": result.rps,
                    }
                )
    floor = next((row["cpu_us_per_call"] for row in rows if row["target"].startswith("floor")), None)
    for row in rows:
        row["vs_floor"] = row["cpu_us_per_call"] / floor if floor else None
    print(
        "\n".join(f"  {row['target']}: {row['cpu_us_per_call']:.0f} us CPU per call" for row in rows),
        flush=True,
    )
    return rows


def run_attack(budget: Budget) -> Any:
    from bench import attack_bench

    return [result.as_dict() for result in attack_bench.run(budget.attack_s)]


_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def summarize_profile(stacks: list[str], top: int = 20) -> dict[str, Any]:
    """Self time per function and line, inclusive time per function, from py-spy's collapsed stacks."""
    self_time: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    packages: Counter[str] = Counter()
    named: Counter[str] = Counter()
    total = 0
    for line in stacks:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_FRAME.match(frame) for frame in stack.split(";")]
        parsed = [(m["function"], m["file"], m["line"] or "") for m in frames if m]
        if not parsed or parsed[-1][0].endswith("select"):
            continue  # the event loop waiting for sockets: idle, not work
        total += count
        function, file, number = parsed[-1]
        self_time[(function, f"{file}:{number}")] += count
        packages[_package(file)] += count
        for function, file in {(f, fi) for f, fi, _ in parsed if not fi.startswith(_PLUMBING)}:
            inclusive[(function, file)] += count
        for function in {f for f, _, _ in parsed if f in NAMED}:
            named[function] += count

    def rows(counter: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
        return [
            {"function": f, "where": w, "share": 100 * n / total} for (f, w), n in counter.most_common(top)
        ]

    by_package = (
        [{"package": name, "share": 100 * n / total} for name, n in packages.most_common()] if total else []
    )
    return {
        "samples": total,
        "self": rows(self_time) if total else [],
        "inclusive": rows(inclusive) if total else [],
        "packages": by_package,
        "named": {name: 100 * named[name] / total for name in NAMED if total and named[name]},
    }


# Where a tools/call spends its time in libmcp's stack, for the page's cost breakdown (inclusive shares).
NAMED = (
    "RequestResponseCycle.run_asgi",
    "ServiceApp.__call__",
    "RequestGuard.admit",
    "RequestGuard.read_body",
    "HttpToolsProtocol.data_received",
    "Intake.admit",
    "StreamableHttpTransport.handle_post",
    "call_info",
    "Server.handle",
    "Server._tools_call",
    "Metrics.call_finished",
    "log_tool_call",
    "Server._run_tool",
    "Deadlines.run",
    "BaseModel.model_validate",
    "BaseModel.model_dump",
    "json_reply",
    "HttpReply.send",
)


# Frames on nearly every stack that say nothing about where the time goes.
_PLUMBING = ("asyncio/", "<frozen", "bench/", "libmcp/runner.py", "uvicorn/protocols", "uvicorn/middleware")


def _package(file: str) -> str:
    """``libmcp``, ``starlette``, ``asyncio`` ... of a py-spy file path (site-packages paths are relative)."""
    head = file.split("/", 1)[0]
    return head.removesuffix(".py") if head and not head.startswith("<") else file


RUNNERS: dict[str, Callable[[Budget], Any]] = {
    "transport": run_transport,
    "services": run_services,
    "resources": run_resources,
    "postgres": run_postgres,
    "fetch": run_fetch,
    "soak": run_soak,
    "profile": run_profile,
    "attack": run_attack,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 s cells, one cold start per service, 20 s soak"
    )
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--skip", nargs="*", choices=SECTIONS, default=[], help="leave these sections out")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep sections of the previous results.json that this run does not redo (the default when "
        "--only or --skip leave sections out)",
    )
    args = parser.parse_args()
    budget = QUICK if args.quick else Budget()
    chosen = [s for s in (args.only or SECTIONS) if s not in args.skip]
    results = previous_results() if args.keep or set(chosen) != set(SECTIONS) else {}
    started = time.monotonic()
    run_date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = results.setdefault("meta", {})
    meta.setdefault("load", {})
    dates = meta.setdefault("dates", {})
    for section in SECTIONS:
        if section not in chosen and section in results and meta.get("date"):
            dates.setdefault(section, meta["date"])  # measured by the earlier run whose results are kept
    # Failures of the sections kept from an earlier run stay on the page with their results.
    failures = [f for f in meta.get("failures", []) if f.split(":", 1)[0] not in chosen]
    for section in chosen:
        meta["load"][section] = [round(x, 2) for x in os.getloadavg()]
        dates[section] = run_date
        print(f"\n== {section} (load average {meta['load'][section]}) ==", flush=True)
        section_started = time.monotonic()
        try:
            results[section] = RUNNERS[section](budget)
        except Exception as exc:
            traceback.print_exc()
            failures.append(f"{section}: {type(exc).__name__}: {exc}")
            results[section] = None
        meta.setdefault("seconds", {})[section] = round(time.monotonic() - section_started, 1)
    meta.update(
        {
            "date": run_date,
            "machine": machine(),
            "duration_s": sum(meta.get("seconds", {}).values()),
            "quick": args.quick,
            "failures": failures,
        }
    )
    notes = [
        f"Section {failure} failed in "
        + ("this run." if section in chosen else f"the run of {dates.get(section, 'an earlier run')}.")
        for failure in failures
        for section in [failure.split(":", 1)[0]]
    ]
    results["notes"] = notes
    report.PLOTS.mkdir(parents=True, exist_ok=True)
    report.RESULTS.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwrote {report.write(results)} in {time.monotonic() - started:.0f} s", flush=True)
    soak_failed = "soak" in chosen and bool(results.get("soak")) and not results["soak"].get("passed")
    return 1 if any(f.split(":", 1)[0] in chosen for f in failures) or soak_failed else 0


def previous_results() -> dict[str, Any]:
    """The stored results, whose sections a partial run keeps; empty when there are none."""
    if not report.RESULTS.exists():
        return {}
    return dict(json.loads(report.RESULTS.read_text()))


if __name__ == "__main__":
    sys.exit(main())
