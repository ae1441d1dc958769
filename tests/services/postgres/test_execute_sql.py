"""execute_sql: row cap, parameters, errors with SQLSTATE, statement timeout, other databases."""

from __future__ import annotations

from tests.services.postgres.support import call, error, ok, sql


async def test_rows_beyond_the_cap_are_counted_not_returned(read_only_url):
    result = ok(await sql(read_only_url, "SELECT g FROM generate_series(1, 2500) g"))
    assert result["row_count"] == 1000 and len(result["rows"]) == 1000
    assert result["rows"][-1] == [1000]
    assert result["truncated"] is True
    assert result["total_rows"] == 2500
    assert result["command_tag"] == "SELECT 2500"


async def test_max_rows_lowers_the_cap_for_one_call(read_only_url):
    result = ok(await sql(read_only_url, "SELECT g FROM generate_series(1, 10) g", max_rows=3))
    assert result["rows"] == [[1], [2], [3]]
    assert (result["truncated"], result["total_rows"]) == (True, 10)


async def test_a_result_exactly_at_the_cap_is_not_truncated(read_only_url):
    result = ok(await sql(read_only_url, "SELECT g FROM generate_series(1, 5) g", max_rows=5))
    assert (result["row_count"], result["truncated"], result["total_rows"]) == (5, False, 5)


async def test_configured_default_cap_applies(serve_service, pg):
    from services.postgres.service import service

    url, _ = serve_service(service, pg.settings(postgres_max_rows=7))
    result = ok(await sql(url, "SELECT g FROM generate_series(1, 20) g"))
    assert (result["row_count"], result["total_rows"]) == (7, 20)


async def test_total_is_unknown_when_counting_takes_too_long(read_only_url):
    result = ok(
        await sql(read_only_url, "SELECT g, pg_sleep(0.01) FROM generate_series(1, 400) g", max_rows=2)
    )
    assert [row[0] for row in result["rows"]] == [1, 2]
    assert result["truncated"] is True
    assert result["total_rows"] is None and result["command_tag"] is None


async def test_parameter_count_must_match_the_placeholders(read_only_url):
    assert "has 2 parameter(s)" in error(await sql(read_only_url, "SELECT $1::int + $2::int", 1))
    assert "has no $n parameters" in error(await sql(read_only_url, "SELECT 1", 1))


async def test_postgresql_errors_carry_sqlstate_message_detail_and_hint(read_only_url):
    text = error(await sql(read_only_url, "SELECT fail_with_hint()"))
    assert text.startswith("PostgreSQL error (SQLSTATE P0001, raise_exception): inventory is inconsistent")
    assert "Detail: product 3 has -2 items" in text
    assert "Hint: run the recount job" in text


async def test_errors_name_the_condition_and_position(read_only_url):
    missing = error(await sql(read_only_url, "SELECT * FROM no_such_table"))
    assert "SQLSTATE 42P01, undefined_table" in missing and "Position: 15" in missing
    syntax = error(await sql(read_only_url, "SELEC 1"))
    assert "SQLSTATE 42601, syntax_error" in syntax and "Position: 1" in syntax
    assert "SQLSTATE 22012, division_by_zero" in error(await sql(read_only_url, "SELECT 1 / 0"))


async def test_the_pool_survives_errors(read_only_url):
    for _ in range(3):
        error(await sql(read_only_url, "SELECT 1 / 0"))
        assert ok(await sql(read_only_url, "SELECT 42"))["rows"] == [[42]]


async def test_statement_timeout_cancels_and_the_next_call_works(serve_service, pg):
    from services.postgres.service import service

    url, _ = serve_service(service, pg.settings(postgres_statement_timeout_s=0.3))
    text = error(await sql(url, "SELECT pg_sleep(5)"))
    assert "SQLSTATE 57014" in text and "statement timeout" in text and "POSTGRES_STATEMENT_TIMEOUT_S" in text
    assert ok(await sql(url, "SELECT 1"))["rows"] == [[1]]


async def test_empty_and_comment_only_queries_are_refused(read_only_url):
    assert "query: String should have at least 1 character" in error(await sql(read_only_url, ""))
    assert "The query is empty" in error(await sql(read_only_url, "  -- nothing\n /* at all */ ;"))


async def test_unknown_arguments_are_refused_by_name(read_only_url):
    text = error(await call(read_only_url, "execute_sql", {"query": "SELECT 1", "sql": "x"}))
    assert "sql: unknown argument" in text


async def test_another_database_is_reached_by_name(read_only_url):
    result = ok(await sql(read_only_url, "SELECT body FROM notes", database="otherdb"))
    assert result["rows"] == [["hello"]] and result["database"] == "otherdb"


async def test_databases_the_role_cannot_use_are_refused_clearly(read_only_url):
    locked = error(await sql(read_only_url, "SELECT 1", database="lockeddb"))
    assert "refused the connection to database 'lockeddb'" in locked and "permission denied" in locked
    missing = error(await sql(read_only_url, "SELECT 1", database="no_such_db"))
    assert 'database "no_such_db" does not exist' in missing
    assert ok(await sql(read_only_url, "SELECT 1"))["rows"] == [[1]]


async def test_text_block_carries_the_same_result(read_only_url):
    import json

    result = await sql(read_only_url, "SELECT 1 AS one")
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


async def test_the_public_asyncpg_paths_give_the_same_results(serve_service, pg, monkeypatch):
    """``wire`` uses two asyncpg internals with public fallbacks; the fallbacks must answer the same."""
    from services.postgres import wire
    from services.postgres.service import service

    queries = [
        ("SELECT 1 AS one", []),
        ("SELECT g, g::text, now() > $1::timestamptz FROM generate_series(1, 7) g", ["2000-01-01T00:00:00Z"]),
        ("SELECT * FROM every_type ORDER BY id", []),
    ]
    fast_url, _ = serve_service(service, pg.settings(postgres_max_rows=5))
    expected = [ok(await sql(fast_url, query, *params)) for query, params in queries]
    monkeypatch.setattr(wire, "FAST_PATHS", False)
    public_url, _ = serve_service(service, pg.settings(postgres_max_rows=5))
    assert [ok(await sql(public_url, query, *params)) for query, params in queries] == expected
    assert expected[1]["truncated"] is True and expected[1]["total_rows"] == 7


def test_structured_content_is_what_pydantic_would_produce():
    """ExecuteSqlResult hands its JSON-ready rows over without pydantic's walk; the JSON must not change."""
    import json

    from services.postgres.models import ColumnInfo, CutValue, ExecuteSqlResult

    result = ExecuteSqlResult.model_construct(
        columns=[ColumnInfo(name="id", type="int4"), ColumnInfo(name="doc", type="jsonb")],
        rows=[(1, {"a": [1.5, None, "ü"]}), (2, None)],
        row_count=2,
        truncated=True,
        total_rows=2,
        command_tag="SELECT 2",
        rows_affected=None,
        cut_values=[CutValue(row=1, column=1, reason="too_large", bytes=9_000_000)],
        note="1 value(s) are null here",
        database="appdb",
    )
    structured = result.model_dump(mode="json", by_alias=True)
    assert json.loads(json.dumps(structured)) == json.loads(result.model_dump_json(by_alias=True))
    assert json.loads(result.mcp_text()) == json.loads(result.model_dump_json())
    columns = [{"name": "id", "type": "int4"}, {"name": "doc", "type": "jsonb"}]
    assert result.model_dump()["columns"] == columns
