"""Two things asyncpg does on its own behalf but does not offer for a prepared statement, used by every
execute_sql call, each with the public equivalent as a fallback:

* :func:`prepare` uses the per-connection statement cache of ``Connection.fetch`` (asyncpg's
  ``Connection._prepare(use_cache=True)``): a query already seen on a pooled connection skips the Parse
  round trip. The cache is per connection, bounded, and dropped by ``reload_schema_state()`` and by
  ``set_type_codec()``. The public ``Connection.prepare`` parses every time.
* :func:`fetch_limited` sends Bind, Execute with a row limit and Sync on the unnamed portal in one round
  trip, as ``PreparedStatement.fetchrow`` does with a limit of 1 (``PreparedStatement.__bind_execute``).
  The public alternative, a cursor, needs a transaction block, a round trip more to bind its portal and
  a Python call per row.

Why private API: measured on this project's test PostgreSQL (loopback, 2 shared cores), one read-only
execute_sql-like call (``Databases.connection`` + ``StatementRunner.execute``) took, fast paths against
the public fallbacks: ``SELECT 1`` ~0.5 ms against ~1.3-2.0 ms, 1,000 rows ~1.7-2.0 ms against
~3.4-4.2 ms; either hook alone is worth more than 15%. So the rule for private APIs holds here instead:
asyncpg is pinned to the tested range in pyproject.toml (``asyncpg>=0.32,<0.33``), the fallbacks run
when the hooks are missing (:data:`FAST_PATHS`), and ``tests/services/postgres/test_wire.py`` fails when
an assumption breaks (the hooks missing on the pinned range, or answering differently from the public
paths). Widening the pin means running tests/services/postgres on the new asyncpg. (The hooks also work
on 0.30 and 0.31, but there a cursor refuses a transaction begun with a plain ``BEGIN``, which
``StatementRunner`` uses; 0.32 is the first release the service runs on.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

# Name-mangled: PreparedStatement.__bind_execute as seen from outside the class.
_BIND_EXECUTE = "_PreparedStatement__bind_execute"

FAST_PATHS = hasattr(asyncpg.Connection, "_prepare") and hasattr(PreparedStatement, _BIND_EXECUTE)


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
        bind_execute: Callable[..., Awaitable[list[asyncpg.Record]]] = getattr(statement, _BIND_EXECUTE)
        return await bind_execute(tuple(args), limit, None)
    records = []
    async for record in statement.cursor(*args, prefetch=limit):
        records.append(record)
        if len(records) >= limit:
            break
    return records


def _closed(statement: PreparedStatement) -> bool:
    connection = getattr(statement, "_connection", None)
    return connection is None or connection.is_closed()
