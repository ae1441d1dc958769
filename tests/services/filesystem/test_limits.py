"""search_files under hostile load: pattern complexity, the work of one search, and fair worker threads.

Findings reproduced here: a pattern of 340 ``**`` segments was an "Internal error" (RecursionError in
the matcher), and eight slow searches from one client held all eight worker threads, so another
client's write_file waited for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from libmcp import Server
from services.filesystem import operations
from services.filesystem.service import service
from services.filesystem.workers import WorkerPool
from tests.services.filesystem.conftest import FsClient, Tree, settings_for

TOKEN_A, TOKEN_B = "token-of-client-a", "token-of-client-b"


async def until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    """Wait for state that the server's threads change (no event to wait on there)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


# Pattern complexity -------------------------------------------------------------------------------


def test_a_pattern_of_340_double_stars_is_refused_naming_the_limit_not_an_internal_error(
    fs: FsClient,
) -> None:
    text = fs.error("search_files", pattern="/".join(["**"] * 340) + "/x")

    assert "340 '**' segments" in text
    assert "FILESYSTEM_MAX_GLOB_DOUBLE_STARS=8" in text


@pytest.mark.parametrize(
    ("pattern", "setting"),
    [
        ("a" * 1025, "FILESYSTEM_MAX_PATTERN_LENGTH=1024"),
        ("/".join(["d"] * 33), "FILESYSTEM_MAX_GLOB_SEGMENTS=32"),
        ("*?" * 33, "FILESYSTEM_MAX_GLOB_WILDCARDS=64"),
        ("{a,b}*{c,d}*{e,f}*{g,h}*{i,j}*", "FILESYSTEM_MAX_GLOB_WILDCARDS=64"),
        ("{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}", "FILESYSTEM_MAX_GLOB_ALTERNATIVES=64"),
    ],
)
def test_patterns_past_a_complexity_limit_are_refused_naming_it(
    fs: FsClient, pattern: str, setting: str
) -> None:
    assert setting in fs.error("search_files", pattern=pattern)
    assert setting in fs.error("search_files", pattern="*.txt", exclude_patterns=["*.log", pattern])


def test_patterns_within_the_limits_still_search(fs: FsClient, tree: Tree) -> None:
    found = fs.ok("search_files", pattern="**/" + "/".join(["**"] * 6) + "/*.{txt,md}")

    assert [match["path"] for match in found["matches"]] == [
        str(tree.rw / "notes.txt"),
        str(tree.rw / "sub" / "inner.txt"),
    ]


def test_the_complexity_limits_are_settings(serve_fs: Callable[..., FsClient], tree: Tree) -> None:
    strict = serve_fs(filesystem_max_glob_double_stars=1, filesystem_max_pattern_length=16)
    assert "FILESYSTEM_MAX_GLOB_DOUBLE_STARS=1" in strict.error("search_files", pattern="**/s*/**")
    assert "FILESYSTEM_MAX_PATTERN_LENGTH=16" in strict.error("search_files", pattern="*" * 17)

    lenient = serve_fs(
        filesystem_max_glob_double_stars=400,
        filesystem_max_glob_segments=400,
        filesystem_max_pattern_length=2048,
    )
    found = lenient.ok("search_files", pattern="/".join(["**"] * 340) + "/inner.txt")
    assert [match["path"] for match in found["matches"]] == [str(tree.rw / "sub" / "inner.txt")]


# The work of one search ---------------------------------------------------------------------------


def many_files(tree: Tree, count: int) -> None:
    for index in range(count):
        (tree.rw / f"file{index:03}.txt").write_text("x")


def test_a_search_stops_at_its_entry_budget_and_names_the_setting(
    serve_fs: Callable[..., FsClient], tree: Tree
) -> None:
    many_files(tree, 30)
    client = serve_fs(filesystem_search_max_entries=10)

    found = client.ok("search_files", pattern="**/*.txt")

    assert found["truncated"] is True and found["entries_scanned"] == 10
    assert "FILESYSTEM_SEARCH_MAX_ENTRIES" in found["truncated_reason"]
    assert len(found["matches"]) == 10  # of the 31 files under the root


def test_a_search_stops_at_its_time_budget_and_names_the_setting(
    serve_fs: Callable[..., FsClient], tree: Tree
) -> None:
    many_files(tree, 30)
    client = serve_fs(filesystem_search_timeout_s=0.000_001)

    found = client.ok("search_files", pattern="**/*.txt")

    assert found["truncated"] is True and found["entries_scanned"] < 30
    assert "FILESYSTEM_SEARCH_TIMEOUT_S" in found["truncated_reason"]


def test_a_listing_stops_at_its_entry_budget(serve_fs: Callable[..., FsClient], tree: Tree) -> None:
    many_files(tree, 30)
    client = serve_fs(filesystem_list_max_entries=10)

    listing = client.ok("list_directory", path=".", depth=2)

    assert listing["truncated"] is True and listing["next_cursor"] is None
    assert len(listing["entries"]) == 10


# Fair shares of the worker threads ----------------------------------------------------------------


class SlowSearches:
    """Makes every search_files wait at a gate before it runs (the test opens it), counting entries."""

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def wrap(self, search: Callable[..., Any]) -> Callable[..., Any]:
        def slow_search(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.running += 1
                self.most_running = max(self.most_running, self.running)
            try:
                self.gate.acquire(timeout=60)
                return search(*args, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

        return slow_search

    async def wait_until_running(self, count: int) -> None:
        await until(lambda: self.running >= count)

    def open(self, count: int = 1000) -> None:
        for _ in range(count):
            self.gate.release()


@pytest.fixture
def slow_searches(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowSearches]:
    slow = SlowSearches()
    monkeypatch.setattr(operations, "search_files", slow.wrap(operations.search_files))
    yield slow
    slow.open()  # never leave a worker thread waiting


async def call(url: str, token: str, tool: str, **arguments: Any) -> dict[str, Any]:
    params = {"name": tool, "arguments": arguments}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        response = await http.post("/rpc", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def text(result: dict[str, Any]) -> str:
    return str(result["content"][0]["text"])


def two_client_server(
    serve_service: Callable[..., tuple[str, Server]], tree: Tree, **server_settings: Any
) -> tuple[str, Server]:
    return serve_service(service, settings_for(tree), auth_tokens=[TOKEN_A, TOKEN_B], **server_settings)


async def test_one_clients_slow_searches_leave_threads_for_another_clients_write(
    serve_service: Callable[..., tuple[str, Server]], tree: Tree, slow_searches: SlowSearches
) -> None:
    url, server = two_client_server(serve_service, tree, queue_timeout_s=30)
    workers: WorkerPool = server.state.workers
    searches = [asyncio.create_task(call(url, TOKEN_A, "search_files", pattern="**/*.txt")) for _ in range(8)]
    await slow_searches.wait_until_running(4)
    await until(lambda: workers.share.waiting() == 4)

    written = await call(url, TOKEN_B, "write_file", path="from-b.txt", content="b was not held up")

    assert written["isError"] is False, text(written)
    assert (tree.rw / "from-b.txt").read_text() == "b was not held up"
    # B went past A's four queued calls, which wait for a thread of A's share, not for B's.
    assert slow_searches.running == 4 and not any(task.done() for task in searches)
    assert workers.share.waiting() == 4
    slow_searches.open()
    results = await asyncio.gather(*searches)
    assert [result["isError"] for result in results] == [False] * 8
    assert slow_searches.most_running == 4
    assert workers.share.in_use == 0


async def test_a_call_past_the_share_gets_busy_naming_the_settings_after_the_queue_timeout(
    serve_service: Callable[..., tuple[str, Server]], tree: Tree, slow_searches: SlowSearches
) -> None:
    url, _ = two_client_server(serve_service, tree, queue_timeout_s=0.5)
    first = [asyncio.create_task(call(url, TOKEN_A, "search_files", pattern="*.txt")) for _ in range(4)]
    await slow_searches.wait_until_running(4)

    fifth = await call(url, TOKEN_A, "search_files", pattern="*.txt")

    assert fifth["isError"] is True
    assert text(fifth).startswith("Busy: no free filesystem worker threads within 0.5 s")
    assert "this client already holds 4, its share of 4" in text(fifth)
    assert "FILESYSTEM_WORKER_THREADS and MCP_CLIENT_SHARE" in text(fifth)
    assert "MCP_QUEUE_TIMEOUT_S" in text(fifth)
    slow_searches.open()
    assert all(result["isError"] is False for result in await asyncio.gather(*first))


async def test_a_call_past_the_share_waits_for_the_clients_own_thread_and_then_runs(
    serve_service: Callable[..., tuple[str, Server]], tree: Tree, slow_searches: SlowSearches
) -> None:
    url, _ = two_client_server(serve_service, tree, queue_timeout_s=30)
    first = [asyncio.create_task(call(url, TOKEN_A, "search_files", pattern="*.txt")) for _ in range(4)]
    await slow_searches.wait_until_running(4)
    fifth = asyncio.create_task(call(url, TOKEN_A, "search_files", pattern="*.txt"))
    await asyncio.sleep(0.5)
    assert slow_searches.running == 4 and not fifth.done()

    slow_searches.open(1)  # one of the first four ends: its thread goes to the fifth
    await slow_searches.wait_until_running(4)
    slow_searches.open()
    results = await asyncio.gather(*first, fifth)

    assert [result["isError"] for result in results] == [False] * 5
    assert slow_searches.most_running == 4


async def test_with_a_share_of_all_threads_one_client_can_still_starve_another(
    serve_service: Callable[..., tuple[str, Server]], tree: Tree, slow_searches: SlowSearches
) -> None:
    """The finding, with MCP_CLIENT_SHARE=1: client A's eight searches hold every thread."""
    url, _ = two_client_server(serve_service, tree, client_share=1, queue_timeout_s=1)
    searches = [asyncio.create_task(call(url, TOKEN_A, "search_files", pattern="*.txt")) for _ in range(8)]
    await slow_searches.wait_until_running(8)

    written = await call(url, TOKEN_B, "write_file", path="from-b.txt", content="b")

    assert written["isError"] is True
    assert "all 8 are in use" in text(written)
    assert not (tree.rw / "from-b.txt").exists()
    slow_searches.open()
    assert all(result["isError"] is False for result in await asyncio.gather(*searches))


async def test_a_timed_out_call_keeps_its_thread_until_the_work_ends(
    serve_service: Callable[..., tuple[str, Server]], tree: Tree, slow_searches: SlowSearches
) -> None:
    """Giving up on a call does not free its thread, so abandoned work cannot pile up past the share."""
    url, server = two_client_server(serve_service, tree, tool_timeout_s=0.5, queue_timeout_s=0.2)
    workers: WorkerPool = server.state.workers
    timed_out = await asyncio.gather(*(call(url, TOKEN_A, "search_files", pattern="*.txt") for _ in range(4)))
    assert all("timed out after 0.5 s" in text(result) for result in timed_out)
    assert slow_searches.running == 4 and workers.share.held == {"token:" + _token_hash(TOKEN_A): 4}

    busy = await call(url, TOKEN_A, "search_files", pattern="*.txt")
    assert busy["isError"] is True and "its share of 4" in text(busy)

    slow_searches.open()
    await until(lambda: workers.share.in_use == 0)
    assert (await call(url, TOKEN_A, "search_files", pattern="*.txt"))["isError"] is False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]
