"""Tool-call timeouts share one timer; each call still times out on its own deadline."""

from __future__ import annotations

import asyncio

import pytest

from libmcp.server import Deadlines


async def sleeping(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


async def test_each_call_times_out_at_its_own_deadline_and_the_others_finish():
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def timed(work_s: float, limit_s: float) -> tuple[str, float]:
        try:
            return await deadlines.run(sleeping(work_s), limit_s), loop.time() - started
        except TimeoutError:
            return "timeout", loop.time() - started

    results = await asyncio.gather(timed(5, 0.3), timed(0.05, 1), timed(5, 0.1), timed(0.2, 5))
    outcomes = [outcome for outcome, _ in results]
    assert outcomes == ["timeout", "done", "timeout", "done"]
    assert 0.3 <= results[0][1] < 2 and 0.1 <= results[2][1] < results[0][1]
    assert deadlines.due == {} and deadlines.expired == set()


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    deadlines = Deadlines()
    call = asyncio.ensure_future(deadlines.run(sleeping(5), 10))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert deadlines.due == {}


async def test_the_timer_is_rearmed_for_calls_that_arrive_later():
    deadlines = Deadlines()
    first = deadlines.run(sleeping(0.01), 0.2)
    assert await first == "done"
    with pytest.raises(TimeoutError):
        await deadlines.run(sleeping(5), 0.1)
    assert await deadlines.run(sleeping(0.01), 0.05) == "done"
