"""``/health`` is open to everyone: a flood of probes must not become a flood of backend checks."""

from __future__ import annotations

import asyncio

import httpx

from libmcp import CheckContext, CheckResult, Service

service = Service("probed", version="1.0.0")
check_runs: list[int] = []


@service.health_check("backend")
async def backend(ctx: CheckContext) -> CheckResult:
    check_runs.append(1)
    await asyncio.sleep(0.3)  # a check that takes a while, as a database round trip can
    return CheckResult("ok", f"checked {len(check_runs)} times")


async def test_concurrent_probes_share_one_run_of_the_checks(serve_service):
    check_runs.clear()
    url, _ = serve_service(service)  # MCP_HEALTH_CACHE_S=0: nothing reused once a run is over
    async with httpx.AsyncClient(timeout=20) as client:
        answers = await asyncio.gather(*(client.get(f"{url}/health") for _ in range(100)))

    assert {answer.status_code for answer in answers} == {200}
    # The probes arrive within far less than the check's 0.3 s: one run, two if the last came late.
    assert len(check_runs) <= 2


async def test_a_fresh_result_is_reused_within_the_cache_time(serve_service):
    check_runs.clear()
    url, _ = serve_service(service, health_cache_s=30)
    async with httpx.AsyncClient(timeout=20) as client:
        answers = [await client.get(f"{url}/health") for _ in range(5)]

    assert len(check_runs) == 1
    assert {answer.json()["checks"]["backend"]["detail"] for answer in answers} == {"checked 1 times"}


async def test_the_checks_run_again_once_their_result_is_older_than_the_cache(serve_service):
    check_runs.clear()
    url, _ = serve_service(service, health_cache_s=0)
    async with httpx.AsyncClient(timeout=20) as client:
        for _ in range(3):
            assert (await client.get(f"{url}/health")).status_code == 200

    assert len(check_runs) == 3
