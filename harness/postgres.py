"""A throwaway PostgreSQL from the machine's binaries, with the databases the tests and benchmarks use.

The cluster (``services.postgres.local.LocalPostgres``, the same code as the embedded default of
``mcp-sse up``) holds, after :func:`create_databases`:

* ``appdb``   the sample schema plus ``postgres_schema.sql`` (every type, a canary table, catalog
              variety), with the pg_stat_statements extension created (the "present" case);
* ``otherdb`` a small table and no extension (the "absent" case);
* ``lockeddb`` which the application role may not connect to; ``leakdb`` for the leak tests.

The service connects as ``mcp_app``, a non-superuser whose password holds every character a URL must
escape, so the scrubbing of each spelling is exercised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from services.postgres.local import SAMPLE_SCHEMA, LocalPostgres, database_url, find_binaries
from services.postgres.settings import PostgresSettings

APP_ROLE = "mcp_app"
APP_PASSWORD = "p@ss w:rd/%?#&é+x"
OTHER_ROLE = "mcp_other"
TEST_SCHEMA = Path(__file__).with_name("postgres_schema.sql")
T = TypeVar("T")


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed on this machine."""


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in a worker thread (safe from sync fixtures)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@dataclass
class Cluster:
    """A started cluster, with the URLs and settings of the application role."""

    server: LocalPostgres

    def admin_url(self, database: str = "postgres") -> str:
        return self.server.url(database)

    def app_url(self, database: str = "appdb") -> str:
        return database_url("127.0.0.1", self.server.port, database, APP_ROLE, APP_PASSWORD)

    def settings(self, database: str = "appdb", **overrides: Any) -> PostgresSettings:
        return PostgresSettings.model_validate({"database_url": self.app_url(database), **overrides})

    async def admin(self, database: str = "appdb") -> asyncpg.Connection:
        return await asyncpg.connect(self.admin_url(database))


def start_cluster(**config: str) -> LocalPostgres:
    """Start an empty cluster with these ``postgresql.conf`` settings; ``destroy()`` it afterwards."""
    bin_dir = find_binaries()
    if bin_dir is None:
        raise PostgresMissing(
            "PostgreSQL binaries not found: run `make test` (scripts/apt/postgres.txt installs them)"
        )
    return LocalPostgres(bin_dir, config=config).start()


async def create_databases(server: LocalPostgres) -> None:
    """The roles and databases described above, in an empty cluster."""
    admin = await asyncpg.connect(server.url())
    try:
        create_role = await admin.fetchval(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", APP_ROLE, APP_PASSWORD
        )
        await admin.execute(create_role)
        await admin.execute(f"CREATE ROLE {OTHER_ROLE} NOLOGIN; GRANT {OTHER_ROLE} TO {APP_ROLE}")
        for name in ("appdb", "otherdb", "lockeddb", "leakdb"):
            await admin.execute(f"CREATE DATABASE {name} OWNER {APP_ROLE}")
        await admin.execute("REVOKE CONNECT ON DATABASE lockeddb FROM PUBLIC, mcp_app")
    finally:
        await admin.close()
    appdb_admin = await asyncpg.connect(server.url("appdb"))
    try:
        await appdb_admin.execute("CREATE EXTENSION pg_stat_statements")
    finally:
        await appdb_admin.close()
    app = await asyncpg.connect(database_url("127.0.0.1", server.port, "appdb", APP_ROLE, APP_PASSWORD))
    try:
        await app.execute(SAMPLE_SCHEMA.read_text(encoding="utf-8"))
        await app.execute(TEST_SCHEMA.read_text(encoding="utf-8"))
    finally:
        await app.close()
    other = await asyncpg.connect(database_url("127.0.0.1", server.port, "otherdb", APP_ROLE, APP_PASSWORD))
    try:
        await other.execute(
            "CREATE TABLE notes (id integer PRIMARY KEY, body text); "
            "INSERT INTO notes VALUES (1, 'hello'); ANALYZE"
        )
    finally:
        await other.close()
