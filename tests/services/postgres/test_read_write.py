"""read-write mode lifts only the read-only part: one statement, timeout and session hygiene remain."""

from __future__ import annotations

import pytest

from services.postgres.service import service
from tests.services.postgres.support import call, error, ok, sql


@pytest.fixture
async def scratch(read_write_url, admin):
    """A private table for one test, dropped afterwards."""
    await admin.execute(
        "DROP TABLE IF EXISTS rw_scratch; CREATE TABLE rw_scratch (id int PRIMARY KEY, v text)"
    )
    await admin.execute("ALTER TABLE rw_scratch OWNER TO mcp_app")
    yield "rw_scratch"
    await admin.execute("DROP TABLE IF EXISTS rw_scratch")


async def test_writes_report_command_tag_and_rows_affected(read_write_url, scratch):
    insert = ok(await sql(read_write_url, "INSERT INTO rw_scratch VALUES ($1, $2), ($3, $4)", 1, "a", 2, "b"))
    assert (insert["command_tag"], insert["rows_affected"], insert["columns"]) == ("INSERT 0 2", 2, [])
    update = ok(await sql(read_write_url, "UPDATE rw_scratch SET v = upper(v) WHERE id = $1", 1))
    assert (update["command_tag"], update["rows_affected"]) == ("UPDATE 1", 1)
    delete = ok(await sql(read_write_url, "DELETE FROM rw_scratch"))
    assert (delete["command_tag"], delete["rows_affected"]) == ("DELETE 2", 2)


async def test_returning_rows_are_capped_and_fully_counted(read_write_url, scratch):
    result = ok(
        await sql(
            read_write_url,
            "INSERT INTO rw_scratch SELECT g, 'x' FROM generate_series(1, 30) g RETURNING id",
            max_rows=4,
        )
    )
    assert result["rows"] == [[1], [2], [3], [4]]
    assert (result["truncated"], result["total_rows"], result["rows_affected"]) == (True, 30, 30)
    assert result["command_tag"] == "INSERT 0 30"
    assert ok(await sql(read_write_url, "SELECT count(*) FROM rw_scratch"))["rows"] == [[30]]


async def test_ddl_and_maintenance_run(read_write_url, scratch):
    assert (
        ok(await sql(read_write_url, "CREATE INDEX rw_scratch_v ON rw_scratch (v)"))["command_tag"]
        == "CREATE INDEX"
    )
    assert ok(await sql(read_write_url, "VACUUM rw_scratch"))["command_tag"] == "VACUUM"
    assert (
        ok(await sql(read_write_url, "COMMENT ON TABLE rw_scratch IS 'scratch'"))["command_tag"] == "COMMENT"
    )


async def test_constraint_violations_carry_detail_and_constraint(read_write_url, scratch):
    ok(await sql(read_write_url, "INSERT INTO rw_scratch VALUES (1, 'a')"))
    text = error(await sql(read_write_url, "INSERT INTO rw_scratch VALUES (1, 'again')"))
    assert "SQLSTATE 23505, unique_violation" in text
    assert "Detail: Key (id)=(1) already exists." in text
    assert "Constraint: rw_scratch_pkey" in text


async def test_still_one_statement_and_no_transaction_control(read_write_url, scratch):
    assert "Exactly one statement" in error(
        await sql(read_write_url, "DELETE FROM rw_scratch; DROP TABLE canary")
    )
    assert "transaction control" in error(await sql(read_write_url, "BEGIN"))
    assert "transaction control" in error(await sql(read_write_url, "COMMIT; DROP TABLE canary"))


async def test_side_effect_functions_are_allowed(read_write_url):
    assert ok(await sql(read_write_url, "SELECT set_config('application_name', 'x', true)"))["rows"] == [
        ["x"]
    ]


async def test_statement_timeout_still_applies(serve_service, pg):
    url, _ = serve_service(
        service, pg.settings(postgres_access_mode="read-write", postgres_statement_timeout_s=0.3)
    )
    assert "SQLSTATE 57014" in error(await sql(url, "SELECT pg_sleep(5)"))


async def test_session_state_never_leaks_into_the_next_call(serve_service, pg):
    """With one pooled connection every call reuses the same session: the reset must undo each change."""
    url, _ = serve_service(service, pg.settings(postgres_access_mode="read-write", postgres_pool_max_size=1))
    pid = ok(await sql(url, "SELECT pg_backend_pid()"))["rows"][0][0]
    for change in (
        "SET search_path = pg_catalog",
        "SET ROLE mcp_other",
        "SET statement_timeout = 0",
        "SET default_transaction_read_only = on",
        "CREATE TEMP TABLE leftover (x int)",
        "LISTEN leftover",
        "SELECT pg_advisory_lock(42)",
    ):
        ok(await sql(url, change))
    after = ok(
        await sql(
            url,
            "SELECT pg_backend_pid(), current_user, current_setting('search_path'), "
            "current_setting('statement_timeout'), current_setting('default_transaction_read_only'), "
            "(SELECT count(*) FROM pg_class WHERE relname = 'leftover' AND relpersistence = 't'), "
            "(SELECT count(*) FROM pg_listening_channels()), "
            "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())",
        )
    )["rows"][0]
    assert after == [pid, "mcp_app", '"$user", public', "15s", "off", 0, 0, 0]


async def test_a_repeated_query_sees_schema_changes(serve_service, pg, scratch):
    """Pooled sessions keep asyncpg's statement cache: a table change must not break a repeated query."""
    url, _ = serve_service(service, pg.settings(postgres_access_mode="read-write", postgres_pool_max_size=1))
    ok(await sql(url, "INSERT INTO rw_scratch VALUES (1, 'a')"))
    assert ok(await sql(url, "SELECT * FROM rw_scratch"))["rows"] == [[1, "a"]]
    ok(await sql(url, "ALTER TABLE rw_scratch ADD COLUMN extra int DEFAULT 7"))
    after = ok(await sql(url, "SELECT * FROM rw_scratch"))
    assert [column["name"] for column in after["columns"]] == ["id", "v", "extra"]
    assert after["rows"] == [[1, "a", 7]]
    assert "DEALLOCATE is refused" in error(await sql(url, "DEALLOCATE ALL"))


async def test_explain_analyze_runs_the_statement_then_rolls_it_back(read_write_url, scratch):
    ok(await sql(read_write_url, "INSERT INTO rw_scratch VALUES (1, 'a'), (2, 'b')"))
    result = ok(
        await call(
            read_write_url,
            "explain_query",
            {"query": "DELETE FROM rw_scratch WHERE id > $1", "params": [0], "analyze": True},
        )
    )
    assert result["analyzed"] is True and result["execution_time_ms"] is not None
    assert result["plan"]["Node Type"] == "ModifyTable"
    assert ok(await sql(read_write_url, "SELECT count(*) FROM rw_scratch"))["rows"] == [[2]]
