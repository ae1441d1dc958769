"""Handing a read to the worker pool: a file opened for a read that never runs is still closed."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from services.filesystem import operations
from services.filesystem.sandbox import Sandbox
from services.filesystem.workers import WorkerPool
from tests.services.filesystem.conftest import Tree, settings_for


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_a_read_cancelled_before_a_worker_starts_it_closes_its_file(tree: Tree) -> None:
    """The tool timeout or a client leaving cancels the call while the read still waits for a worker."""
    sandbox = Sandbox(settings_for(tree).allowed_paths)
    workers = WorkerPool(threads=1, per_client=1, queue_timeout_s=10)
    release = threading.Event()
    workers.executor.submit(release.wait, 10)  # the only thread is busy (outside the share)
    opened = operations.open_for_reading(sandbox, "notes.txt")
    fd = opened.fd
    ran: list[bool] = []
    task = asyncio.create_task(workers.run("client", lambda: ran.append(True), if_never_run=opened.close))
    for _ in range(5):
        await asyncio.sleep(0)  # the task submits its work and waits for it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    workers.executor.shutdown(wait=True)

    assert ran == []
    assert opened.fd == -1 and not is_open(fd)
    assert workers.share.in_use == 0


async def test_a_read_handed_to_a_stopped_pool_closes_its_file(tree: Tree) -> None:
    """During shutdown the pool refuses new work; the file opened for it is closed, not left behind."""
    sandbox = Sandbox(settings_for(tree).allowed_paths)
    workers = WorkerPool(threads=1, per_client=1, queue_timeout_s=10)
    workers.shutdown()
    opened = operations.open_for_reading(sandbox, "notes.txt")
    fd = opened.fd

    with pytest.raises(RuntimeError, match="shutdown"):
        await workers.run("client", lambda: None, if_never_run=opened.close)

    assert opened.fd == -1 and not is_open(fd)
    assert workers.share.in_use == 0


async def test_work_a_worker_ran_is_returned_and_left_to_close_its_own_file(tree: Tree) -> None:
    sandbox = Sandbox(settings_for(tree).allowed_paths)
    workers = WorkerPool(threads=1, per_client=1, queue_timeout_s=10)
    opened = operations.open_for_reading(sandbox, "notes.txt")
    limits = operations.Limits(1000, 1000, 10, 1.0)
    closed_by_caller: list[bool] = []

    result = await workers.run(
        "client",
        lambda: operations.read_opened(opened, "notes.txt", limits),
        if_never_run=lambda: closed_by_caller.append(True),
    )
    workers.shutdown()

    assert result.content == "line 1\nline 2\nline 3\n"
    assert opened.fd == -1 and closed_by_caller == []
