"""The postgres service under hostile load (issue 16): results bounded in bytes while they are built, deep
JSON answered, pools shared fairly between clients, and statements of abandoned calls cancelled on the
server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from harness.postgres import Cluster
from libmcp import Server, ServerSettings
from services.postgres.backend import APPLICATION_NAME
from services.postgres.budget import result_budget
from services.postgres.service import service
from tests.services.postgres.support import call, error, ok, sql
from tests.support.servers import ServiceProcess, run_server

BUDGET = 100_000  # POSTGRES_MAX_RESULT_BYTES of the small-budget service
LIMIT_MB = 256  # the peak RSS a service with default settings must stay under


@pytest.fixture(scope="module")
def small_budget_url(pg: Cluster) -> Iterator[str]:
    server = Server(service, pg.settings(postgres_max_result_bytes=BUDGET), ServerSettings.model_validate({}))
    with run_server(server) as url:
        yield url


# The result budget --------------------------------------------------------------------------------


def test_the_result_budget_is_a_third_of_the_reply_budget_at_most():
    derived = (16_777_216 - 8192) // 3  # the envelope aside, the reply holds the result about three times
    assert result_budget(0, 16_777_216) == derived
    assert result_budget(100_000, 16_777_216) == 100_000
    assert result_budget(10**9, 16_777_216) == derived


async def test_a_value_larger_than_the_budget_comes_back_null_and_listed(small_budget_url):
    result = ok(await sql(small_budget_url, "SELECT 1 AS id, repeat('x', 1000000) AS big, 'small' AS s"))
    assert result["rows"] == [[1, None, "small"]]
    assert result["cut_values"] == [{"row": 0, "column": 1, "reason": "too_large", "bytes": 1_000_000}]
    assert result["truncated"] is True and result["total_rows"] == 1
    assert "POSTGRES_MAX_RESULT_BYTES" in result["note"] and "left(column" in result["note"]


async def test_rows_stop_at_the_result_budget_with_a_note_naming_it(small_budget_url):
    query = "SELECT n, repeat('x', 1000) AS v FROM generate_series(1, 3000) n"
    result = ok(await sql(small_budget_url, query, max_rows=3000))
    shown = result["row_count"]
    assert 50 < shown < 100 and len(result["rows"]) == shown
    assert [row[0] for row in result["rows"]] == list(range(1, shown + 1))
    assert len(orjson.dumps(result["rows"])) <= BUDGET
    assert result["truncated"] is True and result["total_rows"] == 3000
    assert f"Rows stop after {shown}" in result["note"]
    assert "100,000 bytes" in result["note"] and "POSTGRES_MAX_RESULT_BYTES" in result["note"]
    assert "MCP_MAX_REPLY_BYTES" in result["note"]


async def test_the_budget_counts_the_json_the_rows_become(small_budget_url):
    """A double quote is one byte in PostgreSQL and two in JSON: 30,000 of them are 60 kB of JSON."""
    result = ok(
        await sql(small_budget_url, """SELECT n, repeat('"', 30000) AS q FROM generate_series(1, 5) n""")
    )
    assert result["row_count"] == 1 and result["rows"][0] == [1, '"' * 30000]
    assert len(orjson.dumps(result["rows"])) <= BUDGET
    assert result["truncated"] is True and result["total_rows"] == 5


async def test_a_first_row_past_the_budget_keeps_its_small_values(small_budget_url):
    result = ok(await sql(small_budget_url, """SELECT 1 AS id, repeat('"', 60000) AS q"""))
    assert result["rows"] == [[1, None]]
    assert result["cut_values"] == [{"row": 0, "column": 1, "reason": "too_large", "bytes": 120_002}]
    assert result["truncated"] is True


async def test_a_result_within_the_budget_is_whole_and_in_order(small_budget_url):
    query = (
        "SELECT g, repeat('y', g) AS text, ARRAY[g, -g] AS pair, jsonb_build_object('g', g) AS doc, "
        "g::numeric / 4 AS quarter FROM generate_series(1, 40) g ORDER BY g DESC"
    )
    result = ok(await sql(small_budget_url, query))
    assert result["rows"][0] == [40, "y" * 40, [40, -40], {"g": 40}, "10.0000000000000000"]
    assert [row[0] for row in result["rows"]] == list(range(40, 0, -1))
    assert result["truncated"] is False and result["cut_values"] == [] and result["note"] is None


async def test_the_row_cap_still_speaks_for_itself(small_budget_url):
    result = ok(await sql(small_budget_url, "SELECT g FROM generate_series(1, 10) g;  -- ten", max_rows=3))
    assert result["rows"] == [[1], [2], [3]] and result["total_rows"] == 10 and result["truncated"] is True
    assert "max_rows is 3" in result["note"] and "POSTGRES_MAX_ROWS" in result["note"]


async def test_a_query_too_wide_to_guard_is_read_in_chunks_up_to_the_budget(small_budget_url):
    """600 columns: the guard would need more than PostgreSQL's 1,664, so the query runs as it is."""
    columns = ", ".join(f"repeat('x', 100) AS c{index}" for index in range(600))
    result = ok(await sql(small_budget_url, f"SELECT {columns} FROM generate_series(1, 100)"))
    assert result["row_count"] == 1 and len(result["rows"][0]) == 600
    assert result["truncated"] is True and result["total_rows"] == 100
    assert "POSTGRES_MAX_RESULT_BYTES" in result["note"]


async def test_a_write_that_cannot_be_guarded_is_cut_to_the_budget(serve_service, pg: Cluster, admin):
    """A data-modifying WITH cannot be nested in the guard's WITH: its rows are read a chunk at a time."""
    await admin.execute(
        "CREATE TABLE limits_rows AS SELECT n, repeat('x', 1000) AS v FROM generate_series(1, 3000) n; "
        "ALTER TABLE limits_rows OWNER TO mcp_app"
    )
    try:
        settings = pg.settings(postgres_access_mode="read-write", postgres_max_result_bytes=BUDGET)
        url, _ = serve_service(service, settings)
        query = "WITH changed AS (UPDATE limits_rows SET n = n RETURNING n, v) SELECT * FROM changed"
        result = ok(await sql(url, query, max_rows=3000))
        assert 50 < result["row_count"] < 200 and result["truncated"] is True
        assert result["total_rows"] == 3000 and "POSTGRES_MAX_RESULT_BYTES" in result["note"]
    finally:
        await admin.execute("DROP TABLE limits_rows")


async def test_a_reply_stays_within_mcp_max_reply_bytes(serve_service, pg: Cluster):
    """The text block repeats the result escaped inside a JSON string, where quotes and backslashes
    double: the budget derived from MCP_MAX_REPLY_BYTES leaves room for that."""
    url, _ = serve_service(service, pg.settings(), max_reply_bytes=300_000)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "execute_sql",
            "arguments": {"query": """SELECT n, repeat('"\\', 500) FROM generate_series(1, 5000) n"""},
        },
    }
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{url}/rpc", json=body)
    assert response.status_code == 200 and len(response.content) <= 300_000
    result = ok(response.json()["result"])
    assert result["truncated"] is True and result["row_count"] > 10


async def test_a_cached_guard_follows_a_column_dropped_under_select_star(serve_service, pg: Cluster, admin):
    url, _ = serve_service(service, pg.settings(postgres_pool_max_size=1))
    await admin.execute(
        "CREATE TABLE limits_changes (id int, note text); INSERT INTO limits_changes VALUES (1, 'a'); "
        "GRANT SELECT ON limits_changes TO mcp_app"
    )
    try:
        assert ok(await sql(url, "SELECT * FROM limits_changes"))["rows"] == [[1, "a"]]
        await admin.execute("ALTER TABLE limits_changes DROP COLUMN note")
        after = ok(await sql(url, "SELECT * FROM limits_changes"))
        assert (after["columns"], after["rows"]) == ([{"name": "id", "type": "int4"}], [[1]])
    finally:
        await admin.execute("DROP TABLE limits_changes")


# Deep JSON ----------------------------------------------------------------------------------------


def nested(depth: int, innermost: Any = None) -> Any:
    value: Any = [] if innermost is None else [innermost]
    for _ in range(depth - 1):
        value = [value]
    return value


async def test_jsonb_nested_260_deep_comes_back_as_its_json_text(read_only_url):
    result = ok(await sql(read_only_url, "SELECT (repeat('[', 260) || repeat(']', 260))::jsonb AS deep"))
    [[value]] = result["rows"]
    assert isinstance(value, str) and json.loads(value) == nested(260)
    assert result["cut_values"] == [{"row": 0, "column": 0, "reason": "too_deep", "bytes": None}]
    assert "JSON text" in result["note"] and result["truncated"] is False


async def test_json_too_deep_to_parse_comes_back_as_postgresql_text(read_only_url):
    result = ok(await sql(read_only_url, "SELECT (repeat('[', 5000) || repeat(']', 5000))::json AS deep"))
    assert result["rows"] == [["[" * 5000 + "]" * 5000]]
    assert result["cut_values"][0]["reason"] == "too_deep"


async def test_a_record_nested_300_deep_comes_back_as_json_text(read_only_url):
    result = ok(await sql(read_only_url, "SELECT " + "ROW(" * 300 + "1" + ")" * 300 + " AS r"))
    [[value]] = result["rows"]
    assert isinstance(value, str) and json.loads(value) == nested(300, 1)  # a record: its fields' array
    assert result["cut_values"] == [{"row": 0, "column": 0, "reason": "too_deep", "bytes": None}]


async def test_json_200_deep_stays_json(read_only_url):
    result = ok(await sql(read_only_url, "SELECT (repeat('[', 200) || repeat(']', 200))::jsonb AS deep"))
    assert result["rows"] == [[nested(200)]] and result["cut_values"] == []


# Fair pools ---------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call_as(client: httpx.AsyncClient, url: str, token: str, query: str) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "execute_sql", "arguments": {"query": query}},
    }
    response = await client.post(f"{url}/rpc", json=body, headers=bearer(token))
    result: dict[str, Any] = response.json()["result"]
    return result


async def sleeping(admin: asyncpg.Connection, marker: str) -> int:
    """How many statements holding ``marker`` run on the server right now."""
    count: int = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND application_name = $1 "
        "AND query LIKE '%' || $2 || '%'",
        APPLICATION_NAME,
        marker,
    )
    return count


async def until(condition: Any, seconds: float = 10) -> bool:
    for _ in range(int(seconds * 20)):
        if await condition():
            return True
        await asyncio.sleep(0.05)
    return await condition()


async def test_one_clients_slow_queries_leave_connections_for_another(serve_service, pg: Cluster, admin):
    """Five pg_sleep calls of client A take its share of the pool of five (two), client B's SELECT 1 is
    answered while they run, and A's calls beyond its share wait MCP_QUEUE_TIMEOUT_S, then get Busy."""
    url, _ = serve_service(service, pg.settings(), auth_tokens=["token-a", "token-b"], queue_timeout_s=1)
    async with httpx.AsyncClient(timeout=60) as client:
        hog = [
            asyncio.create_task(call_as(client, url, "token-a", "SELECT pg_sleep(4) AS fairness_probe"))
            for _ in range(5)
        ]
        assert await until(lambda: _at_least(sleeping(admin, "fairness_probe"), 2))
        other = await call_as(client, url, "token-b", "SELECT 1")
        still_running = await sleeping(admin, "fairness_probe")
        answers = await asyncio.gather(*hog)
    assert ok(other)["rows"] == [[1]]
    # B was answered while A's statements ran, and A ran only its share of them.
    assert still_running == 2, f"{still_running} of client A's statements were running when B was answered"
    finished = [answer for answer in answers if not answer["isError"]]
    busy = [error(answer) for answer in answers if answer["isError"]]
    assert len(finished) == 2 and len(busy) == 3
    for text in busy:
        assert text.startswith("Busy: no free connections to database 'appdb' within 1 s")
        assert "this client already holds 2, its share of 2" in text
        for setting in ("POSTGRES_POOL_MAX_SIZE", "MCP_CLIENT_SHARE", "MCP_QUEUE_TIMEOUT_S"):
            assert setting in text
        assert "retry later" in text


async def test_calls_over_a_clients_share_wait_for_a_connection_and_finish(serve_service, pg: Cluster):
    """Within the queue timeout, calls beyond the share wait their turn instead of failing."""
    url, _ = serve_service(service, pg.settings(postgres_pool_max_size=2), auth_tokens=["token-a"])
    async with httpx.AsyncClient(timeout=60) as client:
        answers = await asyncio.gather(
            *(call_as(client, url, "token-a", "SELECT pg_sleep(0.3), 7 AS seven") for _ in range(4))
        )
    assert [ok(answer)["rows"][0][1] for answer in answers] == [7, 7, 7, 7]


async def _equals(count: Any, expected: int) -> bool:
    return bool(await count == expected)


async def _at_least(count: Any, expected: int) -> bool:
    return bool(await count >= expected)


# Cancellation -------------------------------------------------------------------------------------


async def test_a_call_cut_by_the_tool_timeout_cancels_its_statement(pg: Cluster, admin):
    server = Server(service, pg.settings(), ServerSettings.model_validate({"tool_timeout_s": 0.5}))
    with run_server(server) as url:
        text = error(await sql(url, "SELECT pg_sleep(30) AS timeout_probe"))
        assert "timed out after 0.5 s" in text
        assert await until(lambda: _equals(sleeping(admin, "timeout_probe"), 0), seconds=5)


async def sse_call(client: httpx.AsyncClient, url: str, lines: Any, request_id: int, query: str) -> str:
    """Read the session's endpoint from an open /sse stream, post one execute_sql there; the endpoint."""
    endpoint = ""
    async for line in lines:
        if line.startswith("data: "):
            endpoint = line.removeprefix("data: ")
            break
    call = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "execute_sql", "arguments": {"query": query}},
    }
    assert (await client.post(f"{url}{endpoint}", json=call)).status_code == 202
    return endpoint


async def test_a_call_cancelled_by_its_client_cancels_its_statement(read_only_url, admin):
    """notifications/cancelled over the 2024-11-05 SSE transport: the statement stops on the server."""
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("GET", f"{read_only_url}/sse") as stream:
            lines = stream.aiter_lines()  # kept: a dropped line iterator closes the stream
            query = "SELECT pg_sleep(30) AS cancel_probe"
            endpoint = await sse_call(client, read_only_url, lines, 7, query)
            assert await until(lambda: _equals(sleeping(admin, "cancel_probe"), 1))
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
            assert (await client.post(f"{read_only_url}{endpoint}", json=cancel)).status_code == 202
            assert await until(lambda: _equals(sleeping(admin, "cancel_probe"), 0), seconds=5)


async def test_a_call_whose_sse_stream_closes_cancels_its_statement(read_only_url, admin):
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("GET", f"{read_only_url}/sse") as stream:
            lines = stream.aiter_lines()
            query = "SELECT pg_sleep(30) AS stream_probe"
            await sse_call(client, read_only_url, lines, 8, query)
            assert await until(lambda: _equals(sleeping(admin, "stream_probe"), 1))
    assert await until(lambda: _equals(sleeping(admin, "stream_probe"), 0), seconds=5)


# Memory of a real service process -----------------------------------------------------------------


def peak_rss_mb(pid: int) -> int:
    """The process's peak resident set (VmHWM) in MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM in /proc")


async def test_huge_results_leave_the_service_process_small(pg: Cluster):
    """One 200 MB value, four at once, then 3,000 rows of 100 kB, against `mcp-sse serve postgres` with
    default settings (but the timeouts, raised so that a slow machine cannot end a call early): the
    answers are cut to the budget and the process stays under 256 MB."""
    env = {"DATABASE_URL": pg.app_url(), "POSTGRES_STATEMENT_TIMEOUT_S": "120", "MCP_TOOL_TIMEOUT_S": "150"}
    huge = {"query": "SELECT repeat('x', 200000000) AS big"}
    wide = {"query": "SELECT n, repeat('x', 100000) AS v FROM generate_series(1, 3000) n", "max_rows": 3000}
    with ServiceProcess("postgres", env) as process:
        assert process.process is not None
        async with httpx.AsyncClient(timeout=180) as client:
            one = ok(await call(process.url, "execute_sql", huge, client=client))
            four = await asyncio.gather(
                *(call(process.url, "execute_sql", huge, client=client) for _ in range(4))
            )
            rows = ok(await call(process.url, "execute_sql", wide, client=client))
        peak = peak_rss_mb(process.process.pid)
    for result in [one, *map(ok, four)]:
        assert result["rows"] == [[None]]
        assert result["cut_values"] == [{"row": 0, "column": 0, "reason": "too_large", "bytes": 200_000_000}]
    assert rows["truncated"] is True and rows["total_rows"] == 3000 and 20 < rows["row_count"] < 100
    assert peak < LIMIT_MB, f"peak RSS {peak} MB"
