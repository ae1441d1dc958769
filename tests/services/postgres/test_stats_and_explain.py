"""query_stats with pg_stat_statements present and absent; explain_query plans without running."""

from __future__ import annotations

from tests.services.postgres.support import call, error, ok, sql


async def test_top_statements_come_from_pg_stat_statements_when_present(read_only_url, admin):
    await admin.execute("SELECT pg_stat_statements_reset()")  # only this test's statements compete
    for _ in range(3):
        ok(await sql(read_only_url, "SELECT count(*) FROM order_items WHERE quantity > $1", 1))
    result = ok(await call(read_only_url, "query_stats", {"limit": 50}))
    assert result["source"] == "pg_stat_statements" and result["note"] is None
    assert result["database_stats"] is None and result["tables"] == []
    matching = [s for s in result["statements"] if "FROM order_items WHERE quantity > $1" in s["query"]]
    assert matching and matching[0]["calls"] >= 3 and matching[0]["rows"] >= 3
    assert matching[0]["total_time_ms"] >= matching[0]["mean_time_ms"] > 0
    times = [statement["total_time_ms"] for statement in result["statements"]]
    assert times == sorted(times, reverse=True)


async def test_database_and_table_statistics_when_pg_stat_statements_is_absent(read_only_url):
    ok(await sql(read_only_url, "SELECT * FROM notes", database="otherdb"))
    result = ok(await call(read_only_url, "query_stats", {"database": "otherdb"}))
    assert result["source"] == "pg_stat_database" and result["statements"] == []
    assert "shared_preload_libraries = 'pg_stat_statements'" in result["note"]
    assert "CREATE EXTENSION pg_stat_statements" in result["note"] and "otherdb" in result["note"]
    database = result["database_stats"]
    assert database["commits"] > 0 and 0 < database["cache_hit_ratio"] <= 1
    [notes] = result["tables"]
    assert (notes["schema"], notes["name"], notes["live_tuples"]) == ("public", "notes", 1)
    assert notes["seq_scans"] >= 1 and notes["last_analyze"].endswith("+00:00")


async def test_an_extension_without_its_preloaded_library_falls_back_with_the_reason(serve_service, plain_pg):
    from services.postgres.service import service
    from services.postgres.settings import PostgresSettings

    url, _ = serve_service(service, PostgresSettings.model_validate({"database_url": plain_pg.url()}))
    result = ok(await call(url, "query_stats"))
    assert result["source"] == "pg_stat_database"
    assert "its library is not in shared_preload_libraries" in result["note"]
    assert result["database_stats"]["backends"] >= 1


async def test_query_stats_limit_is_bounded(read_only_url):
    assert "limit: Input should be less than or equal to 100" in error(
        await call(read_only_url, "query_stats", {"limit": 1000})
    )


async def test_explain_returns_the_json_plan_without_running(read_only_url, admin):
    result = ok(
        await call(
            read_only_url,
            "explain_query",
            {"query": "SELECT * FROM orders WHERE customer_id = $1", "params": [2]},
        )
    )
    assert result["analyzed"] is False and result["execution_time_ms"] is None
    assert result["plan"]["Node Type"] in {"Seq Scan", "Index Scan", "Bitmap Heap Scan"}
    assert result["plan"]["Relation Name"] == "orders"
    assert result["total_cost"] == result["plan"]["Total Cost"] > 0


async def test_explain_analyze_needs_read_write_mode(read_only_url):
    text = error(await call(read_only_url, "explain_query", {"query": "SELECT 1", "analyze": True}))
    assert "POSTGRES_ACCESS_MODE=read-write" in text


async def test_explain_refuses_what_is_not_a_query_and_stacked_statements(read_only_url, admin):
    assert "not DROP" in error(await call(read_only_url, "explain_query", {"query": "DROP TABLE canary"}))
    assert "Exactly one statement" in error(
        await call(read_only_url, "explain_query", {"query": "SELECT 1; DROP TABLE canary"})
    )
    assert "pg_terminate_backend" in error(
        await call(read_only_url, "explain_query", {"query": "SELECT pg_terminate_backend(1)"})
    )
    assert await admin.fetchval("SELECT count(*) FROM canary") == 3


async def test_explain_reports_syntax_errors_at_their_position(read_only_url):
    text = error(await call(read_only_url, "explain_query", {"query": "SELECT FROM WHERE"}))
    assert "SQLSTATE 42601" in text and "Position: 13" in text
