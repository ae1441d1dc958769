"""Converting response bodies within the call's deadline, off the event loop, fairly between clients.

A small body is converted on the event loop (it takes less than handing it off). A larger one is
converted in a process of its own, forked from a fork server that has the converters imported:

- the event loop keeps answering while it runs (lxml and the markdown converter hold the GIL for long
  stretches, so a thread would stall every other request);
- when the call's deadline passes (what is left of FETCH_TIMEOUT_S and the tool timeout) the process is
  killed, so an abandoned conversion costs nothing after its answer;
- its memory goes back to the system when it exits, so a 10 MB page does not leave the service larger.

At most FETCH_CONVERT_PROCESSES run at once, and one client holds at most its share of them
(MCP_CLIENT_SHARE, a :class:`~libmcp.fairness.FairShare`), waiting up to MCP_QUEUE_TIMEOUT_S for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import services
from libmcp import ToolError
from libmcp.fairness import FairShare, ShareTimeout
from services.fetch import convert as converting
from services.fetch.client import FetchedResponse
from services.fetch.convert import Converted
from services.fetch.convert_server import PID

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
    """Converts bodies of at most ``max_bytes``, ``processes`` at once, ``per_client`` at once per client.

    ``function`` (``"module:name"``) does the converting in the child process.
    """

    def __init__(
        self,
        *,
        processes: int,
        per_client: int,
        max_bytes: int,
        queue_timeout_s: float,
        memory_mb: int = 256,
        function: str = "services.fetch.convert:convert",
    ) -> None:
        self.share = FairShare(
            processes,
            per_client,
            what="conversion processes",
            settings="FETCH_CONVERT_PROCESSES and MCP_CLIENT_SHARE, waited for up to MCP_QUEUE_TIMEOUT_S",
        )
        self.max_bytes = max_bytes
        self.memory_mb = memory_mb
        self.queue_timeout_s = queue_timeout_s
        self.function = function
        self.forks = ForkServer()
        self.running: set[int] = set()  # pids of conversion processes

    async def start(self) -> None:
        """Start the fork server now, so the first large page does not wait for its imports."""
        await self.forks.ensure_running()

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
            async with asyncio.timeout_at(deadline.when):
                return await self._in_child(body, content_type, base_url, raw)
        except TimeoutError:
            raise self._too_slow(response, deadline) from None
        finally:
            self.share.release(client_id)

    async def _in_child(self, body: bytes, content_type: str, base_url: str, raw: bool) -> Converted:
        loop = asyncio.get_running_loop()
        sent: bytes | memoryview = body
        if not raw and len(body) > self.max_bytes and converting.classify(content_type, body) == "html":
            # HTML past the cap is converted up to it: the child needs no more (one byte more says "past").
            sent = memoryview(body)[: self.max_bytes + 1]
        request = {
            "function": self.function,
            "length": len(sent),
            "content_type": content_type,
            "base_url": base_url,
            "raw": raw,
            "max_bytes": self.max_bytes,
            "memory_bytes": self.memory_mb * 2**20,
        }
        body_r, body_w = os.pipe()
        result_r, result_w = os.pipe()
        try:
            pid = await self.forks.fork(json.dumps(request).encode(), body_r, result_w)
        finally:
            os.close(body_r)
            os.close(result_w)
        self.running.add(pid)
        finished = False
        try:
            sender, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, os.fdopen(body_w, "wb", 0))
            sender.write(sent)
            sender.close()  # after the buffered bytes are written
            reader = asyncio.StreamReader()
            receiver, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(result_r, "rb", 0)
            )
            try:
                outcome = await reader.read()
                finished = True
            finally:
                receiver.close()
        finally:
            self.running.discard(pid)
            if not finished:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)  # the call gave up (its deadline, or its client left)
        return self._unpickle(outcome)

    def _unpickle(self, outcome: bytes) -> Converted:
        try:
            kind, value = pickle.loads(outcome)  # written by our own child process
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError):
            kind, value = "stopped", None
        if kind in ("memory", "stopped"):
            # A converter in compiled code aborts its process when an allocation fails: no answer then.
            raise ToolError(
                "The converter stopped without an answer: the page needed more memory than "
                f"FETCH_CONVERT_MEMORY_MB={self.memory_mb} MiB allows, or its process was killed. Call again "
                "with raw=true for the body as sent, or raise FETCH_CONVERT_MEMORY_MB."
            )
        if kind == "error":
            raise ToolError(f"Converting the body failed: {value}. Call again with raw=true for it as sent.")
        converted: Converted = value
        return converted

    def shutdown(self) -> None:
        for pid in list(self.running):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.forks.close()

    def _too_slow(self, response: FetchedResponse, deadline: Deadline) -> ToolError:
        return ToolError(
            f"Converting {response.final_url} ({len(response.body):,} bytes) did not finish within the "
            f"time left of the call ({deadline.limits}). Call again with raw=true for the body as sent; "
            f"FETCH_MAX_CONVERT_BYTES={self.max_bytes} bounds how much is converted."
        )


class ForkServer:
    """The service's :mod:`services.fetch.convert_server` process, started again if it has died."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None
        self.lock = asyncio.Lock()

    async def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None or self.control is None:
            await asyncio.to_thread(self._spawn)

    def _spawn(self) -> None:
        self.close()
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.fetch.convert_server", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": _import_path()},
            )
        ours.setblocking(False)
        self.control = ours

    async def fork(self, request: bytes, body_r: int, result_w: int) -> int:
        """The pid of a new conversion process that reads ``body_r`` and writes ``result_w``."""
        loop = asyncio.get_running_loop()
        async with self.lock:
            await self.ensure_running()
            assert self.control is not None
            try:
                socket.send_fds(self.control, [request], [body_r, result_w])
                answer = b""
                while len(answer) < PID.size:
                    chunk = await loop.sock_recv(self.control, PID.size - len(answer))
                    if not chunk:
                        raise ConnectionResetError("the fork server closed its socket")
                    answer += chunk
            except OSError as exc:
                # The next conversion starts a fresh server (off the loop: stopping this one may wait).
                self.control.close()
                self.control = None
                raise ToolError(f"The converter could not start a process ({exc}); try again.") from None
        (pid,) = PID.unpack(answer)
        if pid <= 0:
            raise ToolError("The converter refused the request; try again.")
        return int(pid)

    def close(self) -> None:
        if self.control is not None:
            self.control.close()  # the server exits when it sees its socket closed
            self.control = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process = None


def _import_path() -> str:
    """PYTHONPATH for the fork server: where this ``services`` package is, then what was set."""
    root = str(Path(services.__file__).resolve().parent.parent)
    return os.pathsep.join(part for part in (root, os.environ.get("PYTHONPATH", "")) if part)
