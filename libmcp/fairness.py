"""Fair shares of one bounded capacity: tool-call slots, worker threads, database connections.

A :class:`FairShare` hands out at most ``capacity`` slots at once and at most ``per_identity`` of them to
one identity (the authenticated caller, else the peer address), so one client's slow calls cannot take
every slot. When slots are short, waiters are served round-robin by identity, and a waiter that has
not got a slot within its timeout gets :class:`ShareTimeout`, whose message names the limit.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any


class ShareTimeout(Exception):
    """No slot became free in time; the message says which capacity and which settings bound it."""


def share_of(capacity: int, share: float) -> int:
    """How many of ``capacity`` slots one identity may hold: ``share`` of them, at least one."""
    return max(1, min(capacity, math.floor(capacity * share)))


class FairShare:
    """``capacity`` slots, at most ``per_identity`` to each identity, handed out fairly when short.

    ``what`` names the capacity and ``settings`` the variables that size it, for the timeout's message
    ("tool-call slots", "MCP_MAX_CONCURRENT_CALLS, MCP_CLIENT_SHARE").
    """

    def __init__(self, capacity: int, per_identity: int, *, what: str, settings: str) -> None:
        if capacity < 1 or per_identity < 1:
            raise ValueError("capacity and per_identity must be at least 1")
        self.capacity = capacity
        self.per_identity = min(per_identity, capacity)
        self.what = what
        self.settings = settings
        self.in_use = 0
        self.held: dict[str, int] = {}
        # Waiting identities in round-robin order, each with its waiters in arrival order.
        self._waiters: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @asynccontextmanager
    async def slot(self, identity: str, timeout_s: float) -> AsyncIterator[None]:
        """Hold one slot for ``identity`` for the duration of the block."""
        await self.acquire(identity, timeout_s)
        try:
            yield
        finally:
            self.release(identity)

    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiters.values())

    async def acquire(self, identity: str, timeout_s: float) -> None:
        # Waiters left queued while slots are free are all at their share (every release hands out what
        # it can), so another identity may take a free slot without overtaking anyone who could.
        if identity not in self._waiters and self._may_take(identity):
            self._take(identity)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(identity, deque()).append(future)
        try:
            async with asyncio.timeout(timeout_s):
                await future
        except BaseException as exc:
            if future.done() and not future.cancelled():
                # Granted in the same step as the timeout or the cancellation: give the slot back.
                self.release(identity)
            else:
                future.cancel()
                self._forget(identity, future)
            if isinstance(exc, TimeoutError):
                raise ShareTimeout(self._timeout_message(identity, timeout_s)) from None
            raise

    def release(self, identity: str) -> None:
        self.in_use -= 1
        remaining = self.held[identity] - 1
        if remaining:
            self.held[identity] = remaining
        else:
            del self.held[identity]
        self._grant()

    def release_when_done(self, identity: str, work: Future[Any]) -> None:
        """Release ``identity``'s slot when ``work`` (running in a thread) ends, on this event loop.

        For a slot that belongs to work in a thread rather than to the caller waiting for it: a caller
        given up on (tool timeout, client gone) must not free a slot its thread still uses.
        """
        if work.done():
            self.release(identity)
            return
        loop = asyncio.get_running_loop()

        def release(_: Future[Any]) -> None:
            try:
                loop.call_soon_threadsafe(self.release, identity)
            except RuntimeError:  # the loop has closed (shutdown): nothing is left to share
                pass

        work.add_done_callback(release)

    def _may_take(self, identity: str) -> bool:
        return self.in_use < self.capacity and self.held.get(identity, 0) < self.per_identity

    def _take(self, identity: str) -> None:
        self.in_use += 1
        self.held[identity] = self.held.get(identity, 0) + 1

    def _grant(self) -> None:
        """Give free slots to waiters, one identity at a time in turn, each within its share."""
        granted = True
        while granted and self.in_use < self.capacity and self._waiters:
            granted = False
            for identity in list(self._waiters):
                queue = self._waiters[identity]
                while queue and queue[0].done():  # cancelled while waiting
                    queue.popleft()
                if not queue:
                    del self._waiters[identity]
                    continue
                if not self._may_take(identity):
                    continue
                self._take(identity)
                queue.popleft().set_result(None)
                if queue:
                    self._waiters.move_to_end(identity)
                else:
                    del self._waiters[identity]
                granted = True
                break

    def _forget(self, identity: str, future: asyncio.Future[None]) -> None:
        queue = self._waiters.get(identity)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            pass
        if not queue:
            del self._waiters[identity]
        self._grant()

    def _timeout_message(self, identity: str, timeout_s: float) -> str:
        mine = self.held.get(identity, 0)
        if mine >= self.per_identity:
            why = f"this client already holds {mine}, its share of {self.per_identity}"
        else:
            why = f"all {self.capacity} are in use"
        return (
            f"Busy: no free {self.what} within {timeout_s:g} s ({why}; raised by {self.settings}); "
            "retry later"
        )
