"""Read-only mode holds against every known escape, and text that merely looks dangerous still runs.

After each attempt the database is checked from a superuser session: the canary table, its sequence,
the large objects, the role and the other sessions are exactly as before.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest

from tests.services.postgres.support import error, ok, sql

PROGRAM_MARKER = os.path.join(tempfile.gettempdir(), "mcp-sse-postgres-copy-program-marker")

ESCAPES = [
    # The archived reference server's hole: a COMMIT ends its read-only transaction, then anything runs.
    ("COMMIT; DROP TABLE canary", "transaction control"),
    ("SELECT 1; DROP TABLE canary", "Exactly one statement"),
    ("SELECT 1; COMMIT; DROP TABLE canary;", "Exactly one statement"),
    ("DROP TABLE canary", "read-only mode"),
    ("TRUNCATE canary", "read-only mode"),
    ("DELETE FROM canary", "read-only transaction"),
    ("UPDATE canary SET note = 'x'", "read-only transaction"),
    ("INSERT INTO canary (note) VALUES ('x')", "read-only transaction"),
    (
        "MERGE INTO canary c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN DELETE",
        "read-only transaction",
    ),
    ("WITH gone AS (DELETE FROM canary RETURNING *) SELECT count(*) FROM gone", "read-only transaction"),
    ("WITH x AS (UPDATE canary SET note = 'x' RETURNING 1) SELECT 1", "read-only transaction"),
    ("SELECT * INTO canary_copy FROM canary", "read-only transaction"),
    ("CREATE TABLE canary_copy AS SELECT * FROM canary", "read-only mode"),
    ("SELECT * FROM canary FOR UPDATE", "read-only transaction"),
    ("SET TRANSACTION READ WRITE", "read-only mode"),
    ("SET default_transaction_read_only = off", "read-only mode"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "read-only mode"),
    ("RESET ALL", "read-only mode"),
    ("SET ROLE mcp_other", "read-only mode"),
    ("BEGIN", "transaction control"),
    ("BEGIN READ WRITE", "transaction control"),
    ("START TRANSACTION READ WRITE", "transaction control"),
    ("ROLLBACK", "transaction control"),
    ("END", "transaction control"),
    ("SAVEPOINT s", "transaction control"),
    ("PREPARE TRANSACTION 'escape'", "transaction control"),
    ("PREPARE sneaky AS DELETE FROM canary", "transaction control"),
    ("DO $$BEGIN DELETE FROM canary; END$$", "read-only mode"),
    ("DO $$BEGIN PERFORM set_config('default_transaction_read_only', 'off', false); END$$", "read-only mode"),
    (f"COPY canary TO PROGRAM 'touch {PROGRAM_MARKER}'", "read-only mode"),
    ("COPY canary FROM STDIN", "read-only mode"),
    ("COPY (SELECT 1) TO STDOUT", "read-only mode"),
    ("VACUUM canary", "read-only mode"),
    ("ANALYZE canary", "read-only mode"),
    ("LOCK TABLE canary", "read-only mode"),
    ("LISTEN escape", "read-only mode"),
    ("NOTIFY escape", "read-only mode"),
    ("ALTER ROLE mcp_app CONNECTION LIMIT 1", "read-only mode"),
    ("GRANT ALL ON canary TO PUBLIC", "read-only mode"),
    ("CREATE EXTENSION dblink", "read-only mode"),
    ("CALL wipe_canary()", "read-only mode"),
    ("EXPLAIN ANALYZE DELETE FROM canary", "read-only mode"),
    ("SHOW ALL", "read-only mode"),
    ("REFRESH MATERIALIZED VIEW customer_counts", "read-only mode"),
    ("CHECKPOINT", "read-only mode"),
    ("DISCARD ALL", "DISCARD is refused"),
    ("DEALLOCATE ALL", "DEALLOCATE is refused"),
    # Side effects called from a SELECT: PostgreSQL refuses some, the service refuses the rest by name.
    ("SELECT nextval('canary_id_seq')", "read-only transaction"),
    ("SELECT setval('canary_id_seq', 1000)", "read-only transaction"),
    (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
        "pg_terminate_backend",
    ),
    ("SELECT pg_cancel_backend(pid) FROM pg_stat_activity", "pg_cancel_backend"),
    ("select PG_TERMINATE_BACKEND (1)", "pg_terminate_backend"),
    ('SELECT pg_catalog."pg_terminate_backend"(1)', "pg_terminate_backend"),
    ("SELECT pg_terminate_backend/* a comment */(1)", "pg_terminate_backend"),
    ("SELECT lo_import('/etc/hostname')", "lo_import"),
    ("SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"),
    ("SELECT dblink_exec('dbname=appdb', 'DROP TABLE canary')", "dblink_exec"),
    ("SELECT set_config('default_transaction_read_only', 'off', false)", "set_config"),
    ("SELECT set_config('transaction_read_only', 'off', true)", "set_config"),
    ("SELECT pg_notify('escape', 'payload')", "pg_notify"),
    ("SELECT pg_reload_conf()", "pg_reload_conf"),
    ("SELECT pg_stat_reset()", "pg_stat_reset"),
    ("SELECT pg_stat_statements_reset()", "pg_stat_statements_reset"),
    ("SELECT query_to_xml('DELETE FROM canary RETURNING 1', true, false, '')", "query_to_xml"),
    ("SELECT * FROM ts_stat('SELECT pg_terminate_backend(1)::text::tsvector')", "ts_stat"),
    ('SELECT U&"\\0070g_terminate_backend"(1)', "Unicode-escaped identifier"),
    # Text the lexer must read as PostgreSQL does: the DROP here is inside a nested comment's end.
    ("/* /* */ SELECT 1 */ DROP TABLE canary", "read-only mode"),
]

HARMLESS = [
    ("SELECT 1 -- ; DROP TABLE canary", [[1]]),
    ("SELECT $$; DROP TABLE canary; $$ AS t", [["; DROP TABLE canary; "]]),
    ("SELECT $tag$ pg_terminate_backend(1) $tag$ AS t", [[" pg_terminate_backend(1) "]]),
    ("/* nested /* */ DROP TABLE canary; */ SELECT 2", [[2]]),
    ("SELECT E'\\'; DROP TABLE canary; --' AS t", [["'; DROP TABLE canary; --"]]),
    ("SELECT 'pg_terminate_backend(1)' AS t", [["pg_terminate_backend(1)"]]),
    ('SELECT 1 AS "set_config(", 2 AS pg_notify', [[1, 2]]),
    ("SELECT count(*) FROM canary;", [[3]]),
    ("(SELECT note FROM canary ORDER BY id LIMIT 1)", [["one"]]),
    ("VALUES (1, 'a')", [[1, "a"]]),
    ("TABLE canary ORDER BY id LIMIT 1", [[1, "one"]]),
    (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT sum(i) FROM n",
        [[6]],
    ),
]


async def database_state(admin) -> dict:
    row = await admin.fetchrow(
        """SELECT (SELECT array_agg(note ORDER BY id) FROM canary) AS notes,
                      (SELECT last_value FROM canary_id_seq) AS sequence,
                      (SELECT count(*) FROM pg_largeobject_metadata) AS large_objects,
                      (SELECT rolconnlimit FROM pg_roles WHERE rolname = 'mcp_app') AS connection_limit,
                      (SELECT count(*) FROM pg_class WHERE relname = 'canary_copy') AS copies,
                      (SELECT count(*) FROM pg_prepared_xacts) AS prepared"""
    )
    return dict(row)


@pytest.fixture(scope="module")
async def initial_state(admin):
    return await database_state(admin)


@pytest.mark.parametrize(("query", "fragment"), ESCAPES, ids=[query[:60] for query, _ in ESCAPES])
async def test_escape_is_refused_and_changes_nothing(read_only_url, admin, initial_state, query, fragment):
    text = error(await sql(read_only_url, query))
    assert fragment in text
    assert await database_state(admin) == initial_state
    assert not await asyncio.to_thread(os.path.exists, PROGRAM_MARKER)


@pytest.mark.parametrize(("query", "rows"), HARMLESS, ids=[query[:60] for query, _ in HARMLESS])
async def test_queries_that_only_look_dangerous_run(read_only_url, admin, initial_state, query, rows):
    assert ok(await sql(read_only_url, query))["rows"] == rows
    assert await database_state(admin) == initial_state


async def test_terminate_attempt_leaves_other_sessions_alive(read_only_url, pg):
    victim = await pg.admin()
    try:
        pid = await victim.fetchval("SELECT pg_backend_pid()")
        error(await sql(read_only_url, "SELECT pg_terminate_backend($1)", pid))
        assert await victim.fetchval("SELECT 1") == 1
    finally:
        await victim.close()


async def test_notifications_are_not_sent(read_only_url, pg):
    listener = await pg.admin()
    received: list[str] = []
    try:
        await listener.add_listener("escape", lambda *args: received.append(args[-1]))
        error(await sql(read_only_url, "SELECT pg_notify('escape', 'payload')"))
        await listener.fetchval("SELECT 1")  # a round trip delivers any pending notification
    finally:
        await listener.close()
    assert received == []


async def test_every_statement_runs_in_a_read_only_transaction(read_only_url):
    result = ok(
        await sql(
            read_only_url,
            "SELECT current_setting('transaction_read_only'), current_setting('statement_timeout')",
        )
    )
    assert result["rows"] == [["on", "15s"]]


async def test_a_repeated_query_sees_schema_changes(serve_service, pg, admin):
    """The parsed statement is cached per pooled connection: a table changed in between must not break it."""
    from services.postgres.service import service

    url, _ = serve_service(service, pg.settings(postgres_pool_max_size=1))
    await admin.execute(
        "CREATE TABLE ro_changes (id int); INSERT INTO ro_changes VALUES (1); "
        "GRANT SELECT ON ro_changes TO mcp_app"
    )
    try:
        for _ in range(2):
            assert ok(await sql(url, "SELECT * FROM ro_changes"))["rows"] == [[1]]
        await admin.execute("ALTER TABLE ro_changes ADD COLUMN note text DEFAULT 'new'")
        after = ok(await sql(url, "SELECT * FROM ro_changes"))
        assert (after["columns"][1]["name"], after["rows"]) == ("note", [[1, "new"]])
        await admin.execute("ALTER TABLE ro_changes ALTER COLUMN id TYPE bigint")
        assert ok(await sql(url, "SELECT * FROM ro_changes"))["columns"][0]["type"] == "int8"
    finally:
        await admin.execute("DROP TABLE ro_changes")


async def test_read_only_refusal_names_the_setting(read_only_url):
    assert "POSTGRES_ACCESS_MODE" in error(await sql(read_only_url, "DROP TABLE canary"))
