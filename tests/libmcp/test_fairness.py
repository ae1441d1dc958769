"""FairShare: bounded slots, a per-identity share, round-robin hand-out and a timeout that names the limit."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from libmcp.fairness import FairShare, ShareTimeout, share_of


def gate(capacity: int = 4, per_identity: int = 2) -> FairShare:
    return FairShare(capacity, per_identity, what="test slots", settings="TEST_CAPACITY, TEST_SHARE")


def test_share_of_is_at_least_one_and_at_most_the_capacity() -> None:
    assert share_of(5, 0.5) == 2
    assert share_of(1, 0.5) == 1
    assert share_of(8, 1.0) == 8
    assert share_of(3, 0.01) == 1


async def test_one_identity_cannot_hold_more_than_its_share() -> None:
    slots = gate()
    await slots.acquire("a", 1)
    await slots.acquire("a", 1)
    with pytest.raises(ShareTimeout, match=r"already holds 2, its share of 2.*TEST_CAPACITY, TEST_SHARE"):
        await slots.acquire("a", 0.05)
    await slots.acquire("b", 0.05)  # another identity is not held up by a's waiting
    assert slots.held == {"a": 2, "b": 1}


async def test_a_waiter_at_its_share_does_not_hold_up_another_identity_while_slots_are_free() -> None:
    slots = gate()
    await slots.acquire("a", 1)
    await slots.acquire("a", 1)
    waiting_a = asyncio.create_task(slots.acquire("a", 5))
    await asyncio.sleep(0)

    await asyncio.wait_for(slots.acquire("b", 5), 0.5)

    assert slots.held == {"a": 2, "b": 1} and slots.waiting() == 1
    slots.release("a")
    await waiting_a
    assert slots.held == {"a": 2, "b": 1} and slots.waiting() == 0


async def test_a_full_capacity_times_out_with_a_message_naming_it() -> None:
    slots = gate(capacity=2, per_identity=2)
    await slots.acquire("a", 1)
    await slots.acquire("b", 1)
    with pytest.raises(ShareTimeout, match=r"no free test slots within 0.05 s \(all 2 are in use"):
        await slots.acquire("c", 0.05)
    assert slots.in_use == 2 and slots.waiting() == 0


async def test_freed_slots_go_round_robin_across_waiting_identities() -> None:
    slots = gate(capacity=1, per_identity=1)
    await slots.acquire("holder", 1)
    order: list[str] = []

    async def wait_then_release(identity: str) -> None:
        async with slots.slot(identity, 5):
            order.append(identity)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(wait_then_release(identity)) for identity in ("a", "a", "a", "b", "c")]
    await asyncio.sleep(0)
    slots.release("holder")
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c", "a", "a"]
    assert slots.in_use == 0 and slots.held == {}


async def test_a_slot_released_when_done_comes_back_when_the_thread_ends_not_before() -> None:
    slots = gate(capacity=1, per_identity=1)
    finish = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as threads:
        await slots.acquire("a", 1)
        work = threads.submit(finish.wait, 5)
        slots.release_when_done("a", work)  # the caller stops waiting here; the thread goes on
        await asyncio.sleep(0.05)
        assert slots.held == {"a": 1}

        finish.set()
        await asyncio.wait_for(slots.acquire("b", 5), 5)
    assert slots.held == {"b": 1}


async def test_a_cancelled_waiter_leaves_no_slot_taken() -> None:
    slots = gate(capacity=1, per_identity=1)
    await slots.acquire("a", 1)
    waiter = asyncio.create_task(slots.acquire("b", 5))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    slots.release("a")
    assert slots.in_use == 0 and slots.waiting() == 0


async def test_a_waiter_granted_as_it_is_cancelled_gives_the_slot_back() -> None:
    slots = gate(capacity=1, per_identity=1)
    await slots.acquire("a", 1)
    waiter = asyncio.create_task(slots.acquire("b", 5))
    await asyncio.sleep(0)
    slots.release("a")  # grants b's future in this step
    waiter.cancel()  # ...and b gives up before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.in_use == 0 and slots.held == {}
