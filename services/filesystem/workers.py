"""The filesystem service's threads for blocking work, shared fairly between clients.

Each call takes a slot of a :class:`~libmcp.fairness.FairShare` as large as the pool before its work is
handed to a thread, so one client's slow searches hold at most its share (MCP_CLIENT_SHARE) of the
threads and another client's write still finds one free. A slot belongs to the work, not to the caller
waiting for it: a call given up on (tool timeout, client gone) while its thread runs keeps the slot
until the thread ends, so abandoned work cannot pile up beyond the share either.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from libmcp import ToolError
from libmcp.fairness import FairShare, ShareTimeout

T = TypeVar("T")


class WorkerPool:
    """``threads`` worker threads, at most ``per_client`` of them busy for one client at once."""

    def __init__(self, threads: int, per_client: int, queue_timeout_s: float) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="filesystem")
        self.share = FairShare(
            threads,
            per_client,
            what="filesystem worker threads",
            settings="FILESYSTEM_WORKER_THREADS and MCP_CLIENT_SHARE, waited for up to MCP_QUEUE_TIMEOUT_S",
        )
        self.queue_timeout_s = queue_timeout_s

    async def run(
        self,
        client_id: str,
        function: Callable[[], T],
        *,
        if_never_run: Callable[[], None] | None = None,
    ) -> T:
        """Run ``function`` in a thread (with this task's context variables) within ``client_id``'s share.

        ``if_never_run`` is called when the work never starts: no slot within the queue timeout (a Busy
        :class:`ToolError`), a pool shut down, or a call cancelled before a thread picked the work up,
        e.g. to close a descriptor ``function`` would have closed.
        """
        try:
            await self.share.acquire(client_id, self.queue_timeout_s)
        except BaseException as exc:
            if if_never_run is not None:
                if_never_run()
            if isinstance(exc, ShareTimeout):
                raise ToolError(str(exc)) from None
            raise
        try:
            future = self.executor.submit(contextvars.copy_context().run, function)
        except BaseException:
            self.share.release(client_id)
            if if_never_run is not None:
                if_never_run()
            raise
        try:
            return await asyncio.wrap_future(future)
        finally:
            # cancel() succeeds only for work no thread has started (or that was cancelled already).
            if future.cancel() and if_never_run is not None:
                if_never_run()
            self.share.release_when_done(client_id, future)

    def shutdown(self) -> None:
        """Drop work not started; running work (a search stops within its time budget) ends on its own."""
        self.executor.shutdown(wait=False, cancel_futures=True)
