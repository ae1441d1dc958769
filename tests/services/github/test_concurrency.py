"""PyGithub runs in worker threads with bounded concurrency, so a slow GitHub call never stalls the service.

GitHub cannot be reached from here: a local stand-in (harness/fake_github.py) holds
``GET /repos/octo-org/slow`` open until the test releases it. The asserts are about order and completion,
never about durations.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from harness.fake_github import FakeGitHub
from tests.services.github.support import call, error_text


async def started(fake: FakeGitHub) -> None:
    assert await asyncio.to_thread(fake.slow_started.wait, 20), "the slow request never reached the stand-in"


async def test_a_slow_call_does_not_hold_up_other_calls_or_health(github, fake):
    url, _ = github
    slow = asyncio.create_task(call(url, "get_repository", {"repo": "octo-org/slow"}))
    await started(fake)

    other = await call(url, "get_repository", {"repo": "octo-org/empty-notes"})
    async with httpx.AsyncClient() as client:
        health = await client.get(f"{url}/health")

    assert other["isError"] is False
    assert health.status_code == 200
    assert not slow.done()
    fake.slow_release.set()
    finished = await slow
    assert finished["structuredContent"]["full_name"] == "octo-org/slow"
    assert fake.events.index("answered /repos/octo-org/empty-notes") < fake.events.index("slow answered")


async def test_calls_beyond_the_concurrency_bound_wait_for_a_free_client(serve_github, fake):
    url, _ = serve_github(github_max_concurrency=1)
    slow = asyncio.create_task(call(url, "get_repository", {"repo": "octo-org/slow"}))
    await started(fake)
    queued = asyncio.create_task(call(url, "get_repository", {"repo": "octo-org/empty-notes"}))
    async with httpx.AsyncClient() as client:
        health = await client.get(f"{url}/health")
    await asyncio.sleep(0.3)  # gives a (wrongly) unbounded call the chance to reach the stand-in

    assert health.status_code == 200
    assert "/repos/octo-org/empty-notes" not in fake.paths()
    fake.slow_release.set()
    assert (await queued)["isError"] is False
    assert (await slow)["isError"] is False
    assert fake.events.index("slow answered") < fake.events.index("answered /repos/octo-org/empty-notes")


async def test_a_timed_out_call_keeps_its_client_until_the_thread_is_done(serve_github, fake):
    # PyGithub's own HTTP timeout is the tool timeout in whole seconds, at least 1 s: with a 0.5 s tool
    # timeout the thread still waits on the stand-in for another 0.5 s after the call has timed out. (With
    # equal timeouts the thread's own read timeout can end it before the check below.)
    url, server = serve_github(github_max_concurrency=1, mcp={"tool_timeout_s": 0.5})
    timed_out = await call(url, "get_repository", {"repo": "octo-org/slow"})
    assert error_text(timed_out) == "Tool get_repository timed out after 0.5 s"
    assert fake.slow_started.is_set()

    backend = server.state.github
    assert backend._idle.qsize() == 0, "the client is still in use by the abandoned thread"
    fake.slow_release.set()
    for _ in range(1000):  # bounded wait for the thread to finish and hand the client back
        if backend._idle.qsize() == 1:
            break
        await asyncio.sleep(0.02)
    after = await call(url, "list_issues", {"repo": "octo-org/empty-notes"})
    assert after["isError"] is False, after
    assert fake.received[-1].path == "/repos/octo-org/empty-notes/issues"
    assert fake.events == ["slow started", "slow answered", "answered /repos/octo-org/slow"]


async def call_as(url: str, token: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{url}/rpc", json=body, headers={"Authorization": f"Bearer {token}"})
    result: dict[str, Any] = response.json()["result"]
    return result


async def test_one_client_holds_at_most_its_share_of_the_clients(serve_github, fake):
    # Two clients, share 0.5: each may hold one of the two; alice's slow call must not hold up bob.
    url, _ = serve_github(
        github_max_concurrency=2, mcp={"auth_tokens": ["alice", "bob"], "queue_timeout_s": 0.5}
    )
    slow = asyncio.create_task(call_as(url, "alice", "get_repository", {"repo": "octo-org/slow"}))
    await started(fake)

    over_share = await call_as(url, "alice", "get_repository", {"repo": "octo-org/empty-notes"})
    bobs = await call_as(url, "bob", "get_repository", {"repo": "octo-org/empty-notes"})

    assert bobs["isError"] is False
    assert not slow.done()
    text = error_text(over_share)
    assert text.startswith("Busy: no free GitHub API clients within 0.5 s")
    assert "already holds 1, its share of 1" in text and "MCP_CLIENT_SHARE" in text
    assert fake.paths().count("/repos/octo-org/empty-notes") == 1  # only bob's reached GitHub
    fake.slow_release.set()
    assert (await slow)["isError"] is False
