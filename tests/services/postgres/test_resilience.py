"""PostgreSQL going away and coming back, and connections that must always return to the pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from harness.postgres import Cluster
from libmcp import Server
from services.postgres.backend import APPLICATION_NAME
from services.postgres.local import database_url
from services.postgres.service import service
from services.postgres.settings import PostgresSettings
from tests.services.postgres.support import call, error, ok, sql
from tests.support.servers import free_port


async def health(url: str) -> tuple[int, dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/health")
    return response.status_code, response.json()


async def test_service_starts_without_postgresql_and_reports_degraded(serve_service):
    settings = PostgresSettings.model_validate(
        {"database_url": database_url("127.0.0.1", free_port(), "nowhere", "app", "pw-not-shown")}
    )
    url, _ = serve_service(service, settings)
    status, body = await health(url)
    assert status == 503 and body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "down"
    assert "unreachable" in body["checks"]["database"]["detail"]
    first = error(await sql(url, "SELECT 1"))
    again = error(await sql(url, "SELECT 1"))
    assert "PostgreSQL is unreachable" in first and "reconnects by itself" in first
    assert "PostgreSQL is unreachable" in again


async def test_calls_fail_cleanly_while_postgresql_is_stopped_then_recover(serve_service, plain_pg):
    settings = PostgresSettings.model_validate({"database_url": plain_pg.url()})
    url, _ = serve_service(service, settings)
    assert ok(await sql(url, "SELECT count(*) FROM pings"))["rows"] == [[1]]
    assert (await health(url))[0] == 200

    await asyncio.to_thread(plain_pg.stop)
    try:
        failures = [error(await sql(url, "SELECT count(*) FROM pings")) for _ in range(3)]
        assert all("PostgreSQL" in text and ("unreachable" in text or "lost" in text) for text in failures)
        status, body = await health(url)
        assert status == 503 and body["status"] == "degraded"
        assert "unreachable" in body["checks"]["database"]["detail"]
    finally:
        await asyncio.to_thread(plain_pg.start)

    result = await sql(url, "SELECT count(*) FROM pings")
    for _ in range(150):  # the service reconnects on its own: no restart, no reconfiguration
        if not result["isError"]:
            break
        await asyncio.sleep(0.2)
        result = await sql(url, "SELECT count(*) FROM pings")
    assert ok(result)["rows"] == [[1]]
    assert (await health(url))[0] == 200


async def backends(admin, database: str) -> list[str]:
    rows = await admin.fetch(
        "SELECT state FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
        database,
        APPLICATION_NAME,
    )
    return [row["state"] for row in rows]


async def settled(admin, done: Callable[[list[str]], bool], seconds: float = 10) -> list[str]:
    """The service's sessions on leakdb once ``done`` holds of them (or after ``seconds``)."""
    states = await backends(admin, "leakdb")
    for _ in range(int(seconds * 10)):
        if done(states):
            break
        await asyncio.sleep(0.1)
        states = await backends(admin, "leakdb")
    return states


async def test_pools_open_lazily(serve_service, pg: Cluster, admin):
    await settled(admin, lambda states: not states)  # sessions of earlier tests' servers close
    url, _ = serve_service(service, pg.settings("leakdb"))
    assert await backends(admin, "leakdb") == []
    assert (await health(url))[0] == 200  # the health probe uses the pool of the default database
    assert len(await backends(admin, "leakdb")) == 1
    ok(await call(url, "list_tables"))
    assert len(await backends(admin, "leakdb")) == 1


async def test_a_connection_is_idle_and_reset_when_its_call_is_answered(serve_service, pg: Cluster, admin):
    """Nothing of a call runs after its answer: a client that looks at PostgreSQL right away finds the
    session idle (not idle in transaction), and its last statement was the reset."""
    await settled(admin, lambda states: not states)  # sessions of earlier tests' servers close
    url, _ = serve_service(service, pg.settings("leakdb", postgres_pool_max_size=1))
    async with httpx.AsyncClient() as client:
        for query in ["SELECT 1", "SELECT g FROM generate_series(1, 5) g", "SELECT 1 / 0"] * 10:
            await call(url, "execute_sql", {"query": query, "max_rows": 3}, client=client)
            rows = await admin.fetch(
                "SELECT state, query FROM pg_stat_activity "
                "WHERE datname = 'leakdb' AND application_name = $1",
                APPLICATION_NAME,
            )
            assert [row["state"] for row in rows] == ["idle"], (query, rows)
            assert "RESET ALL" in rows[0]["query"], (query, rows)


async def test_no_connection_leaks_after_a_thousand_failing_calls(serve_service, pg: Cluster, admin):
    settings = pg.settings("leakdb", postgres_pool_max_size=4, postgres_statement_timeout_s=0.05)
    url, _server = serve_service(service, settings)
    failing = [
        {"query": "SELECT 1 / 0"},
        {"query": "SELEC 1"},
        {"query": "SELECT * FROM missing_table"},
        {"query": "DROP TABLE missing_table"},
        {"query": "SELECT 1; SELECT 2"},
        {"query": "SELECT $1::int", "params": ["not a number"]},
        {"query": "SELECT pg_terminate_backend(1)"},
        {"query": "SELECT 1", "database": "lockeddb"},
    ]
    slow = {"query": "SELECT pg_sleep(1)"}  # cancelled by the 50 ms statement timeout
    calls = [failing[i % len(failing)] for i in range(960)] + [slow] * 40
    # JSON-RPC batches of 25 calls, 8 batches in flight: the 1,000 calls stay concurrent but cheap to send.
    batches = [calls[start : start + 25] for start in range(0, len(calls), 25)]
    gate = asyncio.Semaphore(8)

    async with httpx.AsyncClient(timeout=120) as client:

        async def send(batch: list[dict]) -> list[bool]:
            body = [
                {
                    "jsonrpc": "2.0",
                    "id": index,
                    "method": "tools/call",
                    "params": {"name": "execute_sql", "arguments": arguments},
                }
                for index, arguments in enumerate(batch)
            ]
            async with gate:
                response = await client.post(f"{url}/rpc", json=body)
            return [bool(answer["result"]["isError"]) for answer in response.json()]

        outcomes = [outcome for answers in await asyncio.gather(*map(send, batches)) for outcome in answers]
        assert all(outcomes) and len(outcomes) == 1000
        assert ok(await call(url, "execute_sql", {"query": "SELECT 1"}, client=client))["rows"] == [[1]]

    states = await backends(admin, "leakdb")
    assert 1 <= len(states) <= 4
    assert all(state == "idle" for state in states), states
    assert await backends(admin, "lockeddb") == []


async def test_calls_cut_by_the_tool_timeout_give_their_connection_back(pg: Cluster, admin):
    from libmcp import ServerSettings
    from tests.support.servers import run_server

    server = Server(
        service,
        pg.settings("leakdb", postgres_pool_max_size=2),
        ServerSettings.model_validate({"tool_timeout_s": 0.2}),
    )
    with run_server(server) as url:
        for _ in range(6):
            assert "timed out" in error(await sql(url, "SELECT pg_sleep(3)"))
        assert ok(await sql(url, "SELECT 7"))["rows"] == [[7]]
        states = await settled(admin, lambda states: "active" not in states)
    assert len(states) <= 2 and "active" not in states


async def test_without_database_url_the_service_runs_and_says_what_is_missing(serve_service):
    url, _ = serve_service(service, PostgresSettings.model_validate({}))
    status, body = await health(url)
    assert status == 200 and body["checks"]["database"]["status"] == "not_configured"
    assert "DATABASE_URL is not set" in error(await sql(url, "SELECT 1"))
