"""``wire`` reaches into two asyncpg internals (see its docstring). These tests pin what it assumes of
them: the hooks exist on every asyncpg the pin in pyproject.toml allows, they answer exactly as the
public fallbacks do, the row limit is honoured by the server, and a seen query comes from the cache."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import asyncpg
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from harness.postgres import Cluster
from services.postgres import wire

PYPROJECT = Path(__file__).parents[3] / "pyproject.toml"
TEN_ROWS = "SELECT g, g::text AS t, g % 2 = 0 AS even FROM generate_series(1, $1::int) g"


def pinned_asyncpg() -> Requirement:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    (line,) = [line for line in extras["postgres"] if Requirement(line).name == "asyncpg"]
    return Requirement(line)


@pytest.fixture
async def connection(pg: Cluster) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg.app_url())
    try:
        yield connection
    finally:
        await connection.close()


def test_asyncpg_is_pinned_to_a_tested_range_with_an_upper_bound():
    specifier = pinned_asyncpg().specifier
    assert any(spec.operator in {"<", "<=", "~=", "=="} for spec in specifier), (
        f"asyncpg{specifier} has no upper bound: wire.py relies on asyncpg internals, pin the tested range"
    )
    installed = Version(version("asyncpg"))
    assert installed in specifier, (
        f"asyncpg {installed} is outside the tested range asyncpg{specifier}: run tests/services/postgres "
        "on it, then widen the pin in pyproject.toml"
    )


def test_the_fast_paths_are_there_on_the_pinned_asyncpg():
    """On a range the pin allows, a missing hook is a broken assumption, not a reason to go slow."""
    assert wire.FAST_PATHS, (
        f"asyncpg {version('asyncpg')} lacks Connection._prepare or PreparedStatement.__bind_execute: "
        "wire.py would run its slower public fallbacks"
    )


@pytest.mark.parametrize("limit", [1, 3, 10, 11])
async def test_fast_and_public_fetches_give_the_same_rows_and_stop_at_the_limit(
    connection, monkeypatch, limit
):
    fast = await wire.fetch_limited(await wire.prepare(connection, TEN_ROWS), [10], limit)

    monkeypatch.setattr(wire, "FAST_PATHS", False)
    async with connection.transaction():  # a cursor needs one
        public = await wire.fetch_limited(await wire.prepare(connection, TEN_ROWS), [10], limit)

    assert [tuple(record) for record in fast] == [tuple(record) for record in public]
    assert [record["g"] for record in fast] == list(range(1, min(limit, 10) + 1))
    assert fast[0]["t"] == "1" and fast[0]["even"] is False


async def test_the_fast_fetch_of_a_statement_whose_connection_closed_says_so(pg: Cluster):
    connection = await asyncpg.connect(pg.app_url())
    statement = await wire.prepare(connection, TEN_ROWS)
    await connection.close()
    with pytest.raises(asyncpg.InterfaceError, match="the connection is closed"):
        await wire.fetch_limited(statement, [10], 3)


async def test_a_query_seen_on_the_connection_is_not_parsed_again_until_the_cache_is_dropped(connection):
    first = await wire.prepare(connection, TEN_ROWS)
    assert (await wire.prepare(connection, TEN_ROWS)).get_name() == first.get_name()

    await connection.reload_schema_state()
    after_reload = await wire.prepare(connection, TEN_ROWS)
    assert after_reload.get_name() != first.get_name()

    # A codec change drops the cache too: cached statements would decode with the old codec.
    await connection.set_type_codec("json", schema="pg_catalog", encoder=str, decoder=str, format="text")
    assert (await wire.prepare(connection, TEN_ROWS)).get_name() != after_reload.get_name()


async def test_the_public_prepare_parses_every_time(connection, monkeypatch):
    monkeypatch.setattr(wire, "FAST_PATHS", False)
    first = await wire.prepare(connection, TEN_ROWS)
    assert (await wire.prepare(connection, TEN_ROWS)).get_name() != first.get_name()
