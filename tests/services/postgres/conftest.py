"""A real PostgreSQL for the postgres service tests, started once per session from the machine's binaries.

The cluster and its databases come from :mod:`harness.postgres` (shared with the benchmarks and the
soak): ``pg`` holds ``appdb``, ``otherdb``, ``lockeddb`` and ``leakdb``; ``plain_pg`` is a second cluster
tests may stop and restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from harness.postgres import Cluster, create_databases, run_async, start_cluster
from libmcp import Server, ServerSettings
from services.postgres.local import LocalPostgres
from services.postgres.service import service
from tests.support.servers import run_server


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    server = start_cluster(shared_preload_libraries="pg_stat_statements", max_connections="150")
    try:
        run_async(create_databases(server))
        yield Cluster(server)
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def plain_pg() -> Iterator[LocalPostgres]:
    """A second cluster, without pg_stat_statements preloaded (but the extension created in `postgres`);
    tests may stop and restart it. The service connects to it as the superuser, database `postgres`."""
    server = start_cluster()

    async def prepare() -> None:
        connection = await asyncpg.connect(server.url())
        try:
            await connection.execute(
                "CREATE TABLE pings (id int); INSERT INTO pings VALUES (1); "
                "CREATE EXTENSION pg_stat_statements"
            )
        finally:
            await connection.close()

    try:
        run_async(prepare())
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
async def admin(pg: Cluster) -> AsyncIterator[asyncpg.Connection]:
    """A superuser session on appdb for the tests' own checks (shared: tests run one at a time)."""
    connection = await pg.admin()
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
def read_only_url(pg: Cluster) -> Iterator[str]:
    """The service in its default read-only mode against appdb, served once for the session."""
    server = Server(service, pg.settings(), ServerSettings.model_validate({}))
    with run_server(server) as url:
        yield url


@pytest.fixture(scope="session")
def read_write_url(pg: Cluster) -> Iterator[str]:
    """The service in read-write mode against appdb."""
    server = Server(
        service, pg.settings(postgres_access_mode="read-write"), ServerSettings.model_validate({})
    )
    with run_server(server) as url:
        yield url
