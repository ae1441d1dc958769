"""The embedded default of `mcp-sse up`: a throwaway PostgreSQL with the sample schema, then nothing left."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from services.postgres import local
from services.postgres.service import service
from services.postgres.settings import PostgresSettings
from tests.services.postgres.support import call, ok


def prepare_in_thread(env: dict[str, str]):
    """prepare() runs its own event loop, as under `mcp-sse up`; keep it off the test's loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(local.prepare, env).result()


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_throwaway_postgresql_serves_the_sample_schema_then_disappears(serve_service):
    env = {"MCP_ENV_FILE": os.devnull}
    cleanup = prepare_in_thread(env)
    assert cleanup is not None
    base_dir: Path = cleanup.__self__.base_dir  # the cleanup is LocalPostgres.destroy
    assert await asyncio.to_thread(base_dir.is_dir)
    parts = urlsplit(env["DATABASE_URL"])
    assert (parts.hostname, parts.username, parts.path) == ("127.0.0.1", "mcp", "/shop")
    try:
        url, _ = serve_service(
            service, PostgresSettings.model_validate({"database_url": env["DATABASE_URL"]})
        )
        tables = ok(await call(url, "list_tables", {"schema": "public"}))["tables"]
        kinds = {table["name"]: table["kind"] for table in tables}
        assert kinds["order_totals"] == "view"
        assert {"customers", "products", "orders", "order_items"} <= set(kinds)
        totals = ok(
            await call(url, "execute_sql", {"query": "SELECT customer, total FROM order_totals ORDER BY 1"})
        )
        assert totals["rows"] == [
            ["Ada Lovelace", "41.00"],
            ["Wu Jian 吴健", "19.00"],
            ["Émile Zola", "29.00"],
        ]
        stats = ok(await call(url, "query_stats"))
        assert stats["source"] == "pg_stat_statements"
        connection = await asyncpg.connect(env["DATABASE_URL"])
        try:
            assert (
                await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                is False
            )
        finally:
            await connection.close()
    finally:
        await asyncio.to_thread(cleanup)
    assert not accepts_connections(parts.port)
    assert not await asyncio.to_thread(base_dir.exists)


def test_a_configured_database_url_means_no_embedded_server(tmp_path):
    assert (
        local.prepare({"DATABASE_URL": "postgresql://u:p@db.example/app", "MCP_ENV_FILE": os.devnull}) is None
    )
    env_file = tmp_path / "sse.env"
    env_file.write_text("DATABASE_URL=postgresql://u:p@db.example/app\n", encoding="utf-8")
    env = {"MCP_ENV_FILE": str(env_file)}
    assert local.prepare(env) is None
    assert "DATABASE_URL" not in env


def test_without_any_postgresql_the_error_says_how_to_get_one(monkeypatch):
    monkeypatch.setattr(local, "find_binaries", lambda: None)
    monkeypatch.setitem(sys.modules, "pgserver", None)  # import pgserver -> ImportError
    with pytest.raises(local.EmbeddedPostgresError) as raised:
        local.prepare({"MCP_ENV_FILE": os.devnull})
    message = str(raised.value)
    assert "apt-get install postgresql" in message and "pip install pgserver" in message
    assert "DATABASE_URL" in message
