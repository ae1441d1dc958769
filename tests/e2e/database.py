"""A real, throwaway PostgreSQL for the postgres service in the end-to-end tests.

The cluster and its databases come from the helpers the postgres tests use (``start_cluster`` and
``create_databases`` in harness/postgres.py: ``LocalPostgres``, the code behind
``mcp-sse up``'s embedded database, with ``appdb`` holding the sample schema and owned by a
non-superuser role). Here ``appdb`` also gets one table holding a fresh uuid, so a correct answer can
only come from this database.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import asyncpg

from harness.postgres import Cluster, create_databases, run_async, start_cluster


async def _seed(database_url: str, marker: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("CREATE TABLE e2e_notes (id serial PRIMARY KEY, note text NOT NULL)")
        await connection.execute("INSERT INTO e2e_notes (note) VALUES ($1)", marker)
    finally:
        await connection.close()


@contextlib.contextmanager
def running_database() -> Iterator[tuple[str, str]]:
    """Start the throwaway PostgreSQL; yields ``(DATABASE_URL, marker)`` and deletes it afterwards."""
    server = start_cluster()
    try:
        run_async(create_databases(server))
        database_url = Cluster(server).app_url()
        marker = f"end-to-end row {uuid.uuid4().hex}"
        run_async(_seed(database_url, marker))
        yield database_url, marker
    finally:
        server.destroy()
