"""Closed-loop load generation: N virtual users call as fast as answers come, bounded in time and count."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import uvloop

Call = Callable[[], Awaitable[bool]]
UserFactory = Callable[[], Awaitable[tuple[Call, Callable[[], Awaitable[None]]]]]
T = TypeVar("T")


def run_client(load: Coroutine[Any, Any, T]) -> T:
    """Run a load generator on uvloop. On the stock loop the client needs more CPU per call than the
    bare floor server, so on two cores it, not the server under test, would set the pace."""
    return uvloop.run(load)


@dataclass
class Result:
    label: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The fields plus calls per second: the JSON form the reports read."""
        return asdict(self) | {"rps": self.rps}

    def row(self) -> str:
        return (
            f"| {self.label} | {self.concurrency} | {self.rps:,.0f} | {self.p50_ms:.2f} | "
            f"{self.p95_ms:.2f} | "
            f"{self.p99_ms:.2f} | {self.errors} |"
        )


HEADER = "| target | concurrency | req/s | p50 ms | p95 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|"


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run_load(
    label: str,
    make_user: UserFactory,
    concurrency: int,
    *,
    seconds: float = 3.0,
    warmup_s: float = 0.5,
    max_requests: int = 200_000,
) -> Result:
    """Run ``concurrency`` users for ``warmup_s`` + ``seconds``; only the measured window counts."""
    latencies, errors, window = await _drive(make_user, concurrency, seconds, warmup_s, max_requests)
    return _result(label, concurrency, latencies, errors, window)


async def run_side_by_side(
    targets: list[tuple[str, UserFactory]], concurrency: int, *, seconds: float = 3.0, warmup_s: float = 0.5
) -> list[Result]:
    """Each target for ``seconds`` in all, in two halves run in the order A B B A: a drift of the machine's
    speed during the cells then weighs on every target alike, which keeps their ratio fair on a shared
    machine (cells measured minutes apart can differ by a quarter from that alone)."""
    runs: dict[str, tuple[list[float], int, float]] = {label: ([], 0, 0.0) for label, _ in targets}
    for label, make_user in [*targets, *reversed(targets)]:
        latencies, errors, window = await _drive(make_user, concurrency, seconds / 2, warmup_s, 200_000)
        so_far = runs[label]
        runs[label] = (so_far[0] + latencies, so_far[1] + errors, so_far[2] + window)
    return [_result(label, concurrency, *runs[label]) for label, _ in targets]


async def _drive(
    make_user: UserFactory, concurrency: int, seconds: float, warmup_s: float, max_requests: int
) -> tuple[list[float], int, float]:
    """The latencies and errors of the calls in the measured window, and the window's length."""
    users = [await make_user() for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = time.perf_counter() + warmup_s + seconds

    async def user_loop(call: Call) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at and len(latencies) < max_requests:
            started = time.perf_counter()
            ok = await call()
            if measuring:
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1

    tasks = [asyncio.create_task(user_loop(call)) for call, _ in users]
    await asyncio.sleep(warmup_s)
    measuring = True
    window_start = time.perf_counter()
    await asyncio.gather(*tasks)
    window = time.perf_counter() - window_start
    for _, close in users:
        await close()
    return latencies, errors, window


def _result(label: str, concurrency: int, latencies: list[float], errors: int, window: float) -> Result:
    ordered = sorted(latencies)
    return Result(
        label,
        concurrency,
        len(ordered),
        errors,
        window,
        percentile(ordered, 0.50) * 1000,
        percentile(ordered, 0.95) * 1000,
        percentile(ordered, 0.99) * 1000,
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
