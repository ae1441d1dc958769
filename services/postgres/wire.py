"""Two things asyncpg does on its own behalf but does not offer for a prepared statement, used by every
execute_sql call, each with the public (slower) equivalent as a fallback:

* :func:`prepare` uses the per-connection statement cache of ``Connection.fetch`` (asyncpg's
  ``Connection._prepare(use_cache=True)``): a query already seen on a pooled connection skips the Parse
  round trip. The cache is per connection, bounded, and dropped by ``reload_schema_state()``.
* :func:`fetch_limited` sends Bind, Execute with a row limit and Sync on the unnamed portal in one round
  trip, as ``PreparedStatement.fetchrow`` does with a limit of 1 (``PreparedStatement.__bind_execute``).
  The public alternative, a cursor, costs a round trip more to close its portal and a Python call per row.

Both exist in asyncpg 0.22 to 0.32; the test suite also runs the fallbacks (by setting ``FAST_PATHS`` off).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

FAST_PATHS = hasattr(asyncpg.Connection, "_prepare") and hasattr(
    PreparedStatement, "_PreparedStatement__bind_execute"
)


async def prepare(connection: asyncpg.Connection, query: str) -> PreparedStatement:
    """``query`` prepared as a named statement, from the connection's statement cache when it is there."""
    if FAST_PATHS:
        statement: PreparedStatement = await connection._prepare(query, use_cache=True)
        return statement
    return await connection.prepare(query)


async def fetch_limited(
    statement: PreparedStatement, args: Sequence[Any], limit: int
) -> list[asyncpg.Record]:
    """At most ``limit`` rows of ``statement`` run with ``args``, in one round trip.

    Inside a transaction block (required by the fallback), the unnamed portal lives on, suspended, until
    the next Bind or the end of the transaction; nothing uses it again.
    """
    if FAST_PATHS:
        if _closed(statement):  # the check asyncpg's public methods make first
            raise asyncpg.InterfaceError("cannot run the statement: the connection is closed")
        records: list[asyncpg.Record] = await statement._PreparedStatement__bind_execute(  # type: ignore[attr-defined]
            tuple(args), limit, None
        )
        return records
    records = []
    async for record in statement.cursor(*args, prefetch=limit):
        records.append(record)
        if len(records) >= limit:
            break
    return records


def _closed(statement: PreparedStatement) -> bool:
    connection = getattr(statement, "_connection", None)
    return connection is None or connection.is_closed()
