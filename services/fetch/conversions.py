"""Converting response bodies within the call's deadline, off the event loop, fairly between clients.

A small body is converted on the event loop (it takes less than handing it to a thread). A larger one
goes to the service's FETCH_CONVERT_THREADS threads: a client holds at most its share of them
(MCP_CLIENT_SHARE, a :class:`~libmcp.fairness.FairShare`), and the call waits for the conversion only
until its deadline (what is left of FETCH_TIMEOUT_S and the tool timeout). A conversion cannot be
interrupted, so a thread left behind by a call that gave up keeps its slot until it ends, and its input
is bounded by FETCH_MAX_CONVERT_BYTES, which bounds how long it runs.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from libmcp import ToolError
from libmcp.fairness import FairShare, ShareTimeout
from services.fetch import convert as converting
from services.fetch.client import FetchedResponse
from services.fetch.convert import Converted

# Bodies below this size are converted on the event loop: a few milliseconds at most.
INLINE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a call must be answered by (the event loop's clock), and the limits that set it, in words."""

    when: float
    limits: str

    @classmethod
    def after(cls, seconds: float, limits: str) -> Deadline:
        return cls(asyncio.get_running_loop().time() + seconds, limits)


class Converter:
    """Converts bodies of at most ``max_bytes`` in ``threads`` threads, ``per_client`` at once per client."""

    def __init__(self, *, threads: int, per_client: int, max_bytes: int, queue_timeout_s: float) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch-convert")
        self.share = FairShare(
            threads,
            per_client,
            what="conversion threads",
            settings="FETCH_CONVERT_THREADS and MCP_CLIENT_SHARE, waited for up to MCP_QUEUE_TIMEOUT_S",
        )
        self.max_bytes = max_bytes
        self.queue_timeout_s = queue_timeout_s

    async def convert(
        self, response: FetchedResponse, *, raw: bool, client_id: str, deadline: Deadline
    ) -> Converted:
        """``response``'s body converted for a model, or a :class:`ToolError` once ``deadline`` passes."""
        body, content_type, base_url = response.body, response.content_type, str(response.final_url)
        if len(body) < INLINE_BYTES:
            return converting.convert(body, content_type, base_url, raw=raw, max_bytes=self.max_bytes)
        left = deadline.when - asyncio.get_running_loop().time()
        if left <= 0:
            raise self._too_slow(response, deadline)
        try:
            await self.share.acquire(client_id, min(self.queue_timeout_s, left))
        except ShareTimeout as exc:
            raise ToolError(str(exc)) from None
        try:
            future = self.executor.submit(
                contextvars.copy_context().run,  # as asyncio.to_thread does: logs and traces keep the call's
                converting.convert,
                body,
                content_type,
                base_url,
                raw=raw,
                max_bytes=self.max_bytes,
            )
        except BaseException:
            self.share.release(client_id)
            raise
        try:
            async with asyncio.timeout_at(deadline.when):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            raise self._too_slow(response, deadline) from None
        finally:
            future.cancel()  # succeeds only for a conversion no thread has started
            self.share.release_when_done(client_id, future)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _too_slow(self, response: FetchedResponse, deadline: Deadline) -> ToolError:
        return ToolError(
            f"Converting {response.final_url} ({len(response.body):,} bytes) did not finish within the "
            f"time left of the call ({deadline.limits}). Call again with raw=true for the body as sent; "
            f"FETCH_MAX_CONVERT_BYTES={self.max_bytes} bounds how much is converted."
        )
