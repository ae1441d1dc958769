"""Running one caller-supplied statement: the safety checks, parameters, the row cap and the command tag.

In read-only mode a statement must pass, in order: the lexical checks of ``safety.py`` (no transaction
control, no side-effect function calls), PostgreSQL's parser as a single statement (the extended
protocol refuses ``a; b``), PostgreSQL's grammar for queries (``PREPARE _ AS <query>`` only parses for
SELECT/VALUES/TABLE/WITH and INSERT/UPDATE/DELETE/MERGE), and then runs in a ``READ ONLY`` transaction,
where PostgreSQL refuses every write, including data-modifying CTEs, ``SELECT ... INTO`` and ``nextval``.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from asyncpg.types import Attribute, Type

from libmcp import ServerSettings, ToolError
from services.postgres import budget, wire
from services.postgres.budget import CutValue, Guard
from services.postgres.connection_codecs import JsonText
from services.postgres.parameters import ParameterError, coerce_parameter
from services.postgres.result_values import column_converter
from services.postgres.safety import (
    TRANSACTION_CONTROL,
    VERBS,
    LexError,
    Token,
    denied_call,
    first_word,
    has_content,
    rows_affected,
    statement_body,
    statement_verb,
    synthesized_tag,
    tokenize,
)
from services.postgres.timestamp_text import (
    RECORD_OIDS,
    TIMESTAMP_OIDS,
    prints_timestamps_as_text,
    timestamp_column,
    use_timestamp_text,
)

SESSION_CONTROL = frozenset({"prepare", "deallocate", "discard"})  # asyncpg manages prepared statements
COUNT_BUDGET_S = 1.0  # time allowed to count the rows beyond the cap (the total is then unknown)
COUNT_LIMIT = 2**31 - 1  # MOVE FORWARD takes a 32-bit count
GRAMMAR_PREFIX = "PREPARE mcp_sse_query_check AS "
READ_ONLY_HINT = "The service runs in read-only mode (POSTGRES_ACCESS_MODE=read-only)."
DEFAULT_RESULT_BUDGET = budget.result_budget(0, ServerSettings.model_fields["max_reply_bytes"].default)
JSON_OIDS = frozenset({114, 3802})  # json, jsonb
QUERY_VERBS = frozenset({"select", "values", "table"})
CHUNK_ROWS = 64  # rows read at a time from a statement without a guard
# Errors that mean a statement cannot be nested in the guard's WITH (a data-modifying WITH, SHOW, MERGE ...
# RETURNING, too many columns): it then runs as it is.
NOT_NESTABLE = (
    asyncpg.exceptions.SyntaxOrAccessError,
    asyncpg.exceptions.FeatureNotSupportedError,
    asyncpg.exceptions.ProgramLimitExceededError,
)


@dataclass(slots=True)
class Column:
    name: str
    type: str


@dataclass(slots=True)
class StatementResult:
    columns: list[Column]
    rows: list[tuple[Any, ...]]
    truncated: bool
    total_rows: int | None
    command_tag: str | None
    rows_affected: int | None
    cut_values: list[CutValue] = field(default_factory=list)
    note: str | None = None


class StatementRunner:
    """Runs caller-supplied SQL under the access mode of the deployment.

    Round trips of a read-only call whose text was seen before on the pooled connection: Bind + Execute
    with the row cap + Sync, in the implicit transaction of that statement (read-only by the session's
    ``default_transaction_read_only``, bounded by its ``statement_timeout``), then the session reset that
    :meth:`Databases.connection` sends before the answer. A text never seen before adds the grammar check
    (once per text) and the Parse (once per connection); a result past the cap adds ``BEGIN READ ONLY``
    and the count of the rest.

    A statement with rows runs wrapped in the guard of ``budget.py``, which keeps values and rows past the
    result budget (``result_budget`` bytes of JSON) on the server.
    """

    def __init__(
        self, *, read_only: bool, statement_timeout_s: float, result_budget: int = DEFAULT_RESULT_BUDGET
    ) -> None:
        self.read_only = read_only
        self.statement_timeout_s = statement_timeout_s
        self.result_budget = result_budget
        timeout_ms = max(1, round(statement_timeout_s * 1000))
        self._begin = (
            f"BEGIN READ ONLY; SET LOCAL statement_timeout = {timeout_ms:d}" if read_only else "BEGIN"
        )
        self._verbs: OrderedDict[str, str] = OrderedDict()  # texts that passed the lexical checks: verb
        self._queries: OrderedDict[str, None] = OrderedDict()  # texts the grammar accepted as queries
        # Guards by statement text and column types; None: the statement cannot be nested.
        self._guards: OrderedDict[tuple[str, tuple[int, ...]], Guard | None] = OrderedDict()

    async def execute(
        self, connection: asyncpg.Connection, query: str, params: list[Any], max_rows: int
    ) -> StatementResult:
        """Run ``query``; a transaction it needs is left open for ``Databases.connection`` to commit."""
        verb = self.verb_of(query)
        if self.read_only:
            await self.check_query_grammar(connection, query, verb)
        try:
            return await self._execute(connection, query, params, verb, max_rows)
        except (
            asyncpg.InvalidCachedStatementError,
            asyncpg.exceptions.OutdatedSchemaCacheError,
            asyncpg.exceptions.InvalidColumnReferenceError,
        ):
            # A table or type behind a cached statement changed since it was prepared: PostgreSQL refused
            # it before running it (a cached guard whose statement lost a column fails with "WITH query
            # has 1 columns available but 2 columns specified"), or asyncpg could not decode its rows
            # inside the transaction rolled back here. Nothing of it stays done, so it is prepared afresh
            # and run again, once; a real error of the statement then comes back from preparing it.
            if connection.is_in_transaction():
                await connection.execute("ROLLBACK")
            await connection.reload_schema_state()
            return await self._execute(connection, query, params, verb, max_rows)

    async def _execute(
        self, connection: asyncpg.Connection, query: str, params: list[Any], verb: str, max_rows: int
    ) -> StatementResult:
        as_text = prints_timestamps_as_text(connection)  # as install_codecs set the connection up
        statement = None
        if as_text:
            try:
                statement = await prepare(connection, query)
            except asyncpg.UnsupportedClientFeatureError:
                pass  # a range or composite value holds timestamps: asyncpg decodes those from binary only
            else:
                if any(attribute.type.oid in RECORD_OIDS for attribute in statement.get_attributes()):
                    statement = None  # asyncpg would read the timestamp fields of a record as text
            if statement is None:
                async with binary_timestamps(connection):
                    return await self._begin_and_run(connection, query, params, verb, max_rows, False)
        return await self._begin_and_run(connection, query, params, verb, max_rows, as_text, statement)

    async def _begin_and_run(
        self,
        connection: asyncpg.Connection,
        query: str,
        params: list[Any],
        verb: str,
        max_rows: int,
        timestamps_as_text: bool,
        statement: PreparedStatement | None = None,
    ) -> StatementResult:
        if statement is None:
            statement = await prepare(connection, query)
        guarded = None
        if statement.get_attributes():
            # Before any BEGIN: a statement that cannot be nested fails to parse, which must not abort it.
            guarded = await self._guarded(connection, query, statement)
        if self.read_only:
            if not wire.FAST_PATHS:  # the fallback reads through a cursor, which needs a transaction block
                await connection.execute(self._begin)
        elif statement.get_attributes():
            # Statements without rows run on their own in read-write mode (VACUUM refuses a transaction).
            await connection.execute(self._begin)
        return await self._run(connection, statement, guarded, params, verb, max_rows, timestamps_as_text)

    async def _guarded(
        self, connection: asyncpg.Connection, query: str, statement: PreparedStatement
    ) -> tuple[PreparedStatement, Guard] | None:
        """The guarded form of ``statement`` (see ``budget.guard``), prepared; ``None`` if it has none."""
        attributes = statement.get_attributes()
        key = (query, tuple(attribute.type.oid for attribute in attributes))
        if key in self._guards:
            self._guards.move_to_end(key)
            known = self._guards[key]
            if known is None:
                return None
            return await prepare(connection, known.sql), known
        guard = budget.guard(statement_body(query), attributes, self.result_budget)
        try:
            guarded = await prepare(connection, guard.sql)
        except NOT_NESTABLE:
            self._remember_guard(key, None)
            return None
        self._remember_guard(key, guard)
        return guarded, guard

    def _remember_guard(self, key: tuple[str, tuple[int, ...]], guard: Guard | None) -> None:
        self._guards[key] = guard
        if len(self._guards) > 512:
            self._guards.popitem(last=False)

    async def explain(
        self, connection: asyncpg.Connection, query: str, params: list[Any], analyze: bool
    ) -> dict[str, Any]:
        """The JSON plan; ``analyze`` runs the statement in a transaction that is always rolled back."""
        if analyze and self.read_only:
            raise ToolError(
                "analyze=true runs the statement, so it needs POSTGRES_ACCESS_MODE=read-write. "
                "Without analyze the plan is estimated without running anything."
            )
        verb = self.verb_of(query)
        await self.check_query_grammar(connection, query, verb, explaining=True)
        options = "FORMAT JSON, ANALYZE, BUFFERS" if analyze else "FORMAT JSON"
        transaction = connection.transaction(readonly=self.read_only)
        await transaction.start()
        try:
            try:
                statement = await prepare(connection, f"EXPLAIN ({options}) {query}", unnamed=True)
            except asyncpg.UnsupportedClientFeatureError:
                if not prints_timestamps_as_text(connection):
                    raise
                # A parameter is a range or composite value holding timestamps: sent in binary only.
                async with binary_timestamps(connection):
                    statement = await prepare(connection, f"EXPLAIN ({options}) {query}", unnamed=True)
                    plans = await statement.fetchval(*coerce_all(params, statement))
            else:
                plans = await statement.fetchval(*coerce_all(params, statement))
        finally:
            await transaction.rollback()
        if isinstance(plans, JsonText):
            raise ToolError(
                "The plan is nested too deep to return as JSON (over 1,000 levels): explain a part of the "
                "query, or run EXPLAIN (FORMAT TEXT) through execute_sql in read-write mode."
            )
        plan: dict[str, Any] = plans[0]
        return plan

    def verb_of(self, query: str) -> str:
        """The statement's verb, after the lexical checks (:meth:`vet`); remembered per text."""
        verb = self._verbs.get(query)
        if verb is not None:
            self._verbs.move_to_end(query)
            return verb
        verb = statement_verb(self.vet(query))
        self._verbs[query] = verb
        if len(self._verbs) > 512:
            self._verbs.popitem(last=False)
        return verb

    def vet(self, query: str) -> list[Token]:
        """The lexical checks; returns the tokens."""
        try:
            tokens = tokenize(query)
        except LexError as exc:
            raise ToolError(f"The query could not be parsed: {exc}.") from None
        if not has_content(tokens):
            raise ToolError("The query is empty.")
        word = first_word(tokens)
        if word in TRANSACTION_CONTROL or word in SESSION_CONTROL:
            raise ToolError(
                f"{word.upper()} is refused: each call runs as its own transaction on a pooled session, so "
                "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION) and "
                "session-level PREPARE, DEALLOCATE and DISCARD have no use here."
            )
        if self.read_only:
            denied = denied_call(tokens)
            if denied is not None:
                raise ToolError(
                    f"Calling {denied} is refused in read-only mode: its effect is outside what a read-only "
                    f"transaction can refuse. {READ_ONLY_HINT}"
                )
        return tokens

    async def check_query_grammar(
        self, connection: asyncpg.Connection, query: str, verb: str, explaining: bool = False
    ) -> None:
        """Let PostgreSQL's grammar decide that ``query`` is a query (not DDL, DO, COPY, SET, VACUUM...).

        Called outside any transaction: a refused parse must not abort the caller's transaction.
        """
        if query in self._queries:
            self._queries.move_to_end(query)
            return
        try:
            await prepare(connection, GRAMMAR_PREFIX + query, unnamed=True)
        except asyncpg.PostgresSyntaxError:
            await prepare(connection, query, unnamed=True)  # a real syntax error reports itself, in place
            what = (verb or "this statement").upper()
            if explaining:
                raise ToolError(
                    f"explain_query explains SELECT, VALUES, TABLE, WITH, INSERT, UPDATE, DELETE and MERGE "
                    f"statements, not {what}."
                ) from None
            raise ToolError(
                f"{what} is refused in read-only mode: only queries run "
                "(SELECT, VALUES, TABLE, WITH ... SELECT). "
                f"{READ_ONLY_HINT} Use explain_query for plans and current_setting() for settings."
            ) from None
        self._queries[query] = None
        if len(self._queries) > 512:
            self._queries.popitem(last=False)

    async def _run(
        self,
        connection: asyncpg.Connection,
        statement: PreparedStatement,
        guarded: tuple[PreparedStatement, Guard] | None,
        params: list[Any],
        verb: str,
        max_rows: int,
        timestamps_as_text: bool,
    ) -> StatementResult:
        attributes = statement.get_attributes()
        if not attributes and not (self.read_only and verb in QUERY_VERBS):
            await statement.fetch(*coerce_all(params, statement))
            tag = statement.get_statusmsg() or None
            return StatementResult([], [], False, None, tag, rows_affected(tag))
        running, guard = guarded if guarded is not None else (statement, None)
        args = coerce_all(params, running)
        total: int | None
        stopped = False
        if guard is None:
            records, capped, stopped, total = await self._fetch_in_chunks(connection, running, args, max_rows)
        elif self.read_only:
            # One round trip for the first rows; a query is free of side effects here, so when there were
            # more, a second portal counts them all server-side (unguarded: only the count is wanted).
            records = await wire.fetch_limited(running, args, max_rows + 1)
            capped = len(records) > max_rows
            total = len(records)
            if capped:
                records = records[:max_rows]
                if not connection.is_in_transaction():
                    await connection.execute(self._begin)
                counted = statement.cursor(*coerce_all(params, statement))
                total = await self._count_rest(connection, await counted, 0)
        else:
            # Writes run once: the same portal returns the first rows, then counts the rest.
            cursor = await running.cursor(*args)
            records = await cursor.fetch(max_rows + 1)
            capped = len(records) > max_rows
            total = len(records)
            if capped:
                records = records[:max_rows]
                total = await self._count_rest(connection, cursor, max_rows + 1)
        cut: list[CutValue] = []
        fetched = len(records)
        if guard is not None:
            records = records[: guard.rows_within(records)]
            cut = guard.cuts(records)
        columns = [Column(attribute.name, _type_name(attribute.type)) for attribute in attributes]
        tag = synthesized_tag(verb, total) if total is not None and verb in VERBS else None
        affected = total if verb in {"insert", "update", "delete", "merge"} else None
        values = running.get_attributes()[: len(attributes)]  # the types the values were decoded as
        rows = json_rows(records, values, timestamps_as_text)
        json_columns = [index for index, attribute in enumerate(values) if attribute.type.oid in JSON_OIDS]
        fitted = budget.fit(rows, cut, self.result_budget - budget.columns_size(columns), json_columns)
        over_budget = stopped or fitted.over_budget or len(records) < fetched
        truncated = capped or over_budget or any(entry.reason == "too_large" for entry in fitted.cut)
        note = budget.note(
            shown=len(fitted.rows),
            max_rows=max_rows if capped else None,
            over_budget=over_budget,
            cut=fitted.cut,
            result_budget=self.result_budget,
        )
        return StatementResult(columns, fitted.rows, truncated, total, tag, affected, fitted.cut, note)

    async def _fetch_in_chunks(
        self, connection: asyncpg.Connection, statement: PreparedStatement, args: list[Any], max_rows: int
    ) -> tuple[list[asyncpg.Record], bool, bool, int | None]:
        """The rows of a statement without a guard, read through a cursor a chunk at a time until the row
        cap or, roughly measured, the result budget: the records, whether the cap and whether the budget
        stopped them, and the total. A single value is bounded only by PostgreSQL."""
        if not connection.is_in_transaction():
            await connection.execute(self._begin)
        cursor = await statement.cursor(*args)
        chunk_rows = CHUNK_ROWS if statement.get_attributes() else max_rows + 1
        records: list[asyncpg.Record] = []
        spent = 0
        stopped = exhausted = False
        while len(records) <= max_rows:
            wanted = min(chunk_rows, max_rows + 1 - len(records))
            chunk = await cursor.fetch(wanted)
            records += chunk
            spent += sum(map(_rough_size, chunk))
            exhausted = len(chunk) < wanted
            if exhausted:
                break
            if spent > self.result_budget:
                stopped = True
                break
        capped = len(records) > max_rows
        total: int | None = len(records)
        if not exhausted:
            total = await self._count_rest(connection, cursor, len(records))
        return records[:max_rows], capped, stopped, total

    async def _count_rest(self, connection: asyncpg.Connection, cursor: Any, fetched: int) -> int | None:
        budget_ms = max(1, round(min(COUNT_BUDGET_S, self.statement_timeout_s) * 1000))
        # A savepoint: a count that runs out of time must not abort the statement's own work, and rolling
        # back to it restores the statement timeout.
        await connection.execute(f"SAVEPOINT mcp_sse_count; SET LOCAL statement_timeout = {budget_ms:d}")
        try:
            moved: int | None = await cursor.forward(COUNT_LIMIT)
        except asyncpg.QueryCanceledError:
            moved = None
        await connection.execute("ROLLBACK TO SAVEPOINT mcp_sse_count")
        return None if moved is None else fetched + int(moved)


@contextlib.asynccontextmanager
async def binary_timestamps(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """The connection's timestamps in binary for the block, then as text again."""
    await use_timestamp_text(connection, False)
    try:
        yield
    finally:
        await use_timestamp_text(connection, True)


def json_rows(
    records: list[asyncpg.Record], attributes: Sequence[Attribute], timestamps_as_text: bool = False
) -> list[tuple[Any, ...]]:
    """The records as tuples of JSON-ready values, rewritten a column at a time; columns of JSON-ready
    types are taken as they are. ``timestamps_as_text``: the records were fetched with timestamps as text
    (see ``timestamp_text.use_timestamp_text``)."""
    rewriters = [_column_rewriter(attribute.type, timestamps_as_text) for attribute in attributes]
    if not records or not any(rewriters):
        width = len(rewriters)  # a guarded statement's records hold more than the values
        return [record[:width] for record in records]
    columns = [list(map(itemgetter(index), records)) for index in range(len(rewriters))]
    for index, rewrite in enumerate(rewriters):
        if rewrite is not None:
            columns[index] = rewrite(columns[index])
    return list(zip(*columns, strict=True))


def _column_rewriter(column_type: Type, timestamps_as_text: bool) -> Callable[[list[Any]], list[Any]] | None:
    """What turns one column's values into JSON-ready ones, all at once; ``None`` if they are already."""
    utc = TIMESTAMP_OIDS.get(column_type.oid) if timestamps_as_text else None
    if utc is not None:
        return partial(timestamp_column, utc=utc)
    convert = column_converter(column_type, timestamps_as_text)
    if convert is None:
        return None
    return lambda column: list(map(convert, column))


async def prepare(connection: asyncpg.Connection, query: str, *, unnamed: bool = False) -> PreparedStatement:
    """Parse ``query`` server-side as exactly one statement.

    By default the statement is named and kept in the connection's statement cache (see ``wire``), so
    the same text on the same pooled connection is not parsed again. ``unnamed`` uses PostgreSQL's unnamed
    statement (asyncpg: ``name=False``), which needs no Close round trip later; it lives only until the
    next Parse or simple query, so only for parse-then-run sequences and checks.
    """
    try:
        if unnamed:
            return await connection.prepare(query, name=False)
        return await wire.prepare(connection, query)
    except asyncpg.PostgresSyntaxError as exc:
        if "multiple commands" in (exc.message or ""):
            raise ToolError(
                "Exactly one statement per call: the query holds several statements separated by ';'. "
                "Send them as separate calls."
            ) from None
        raise


def coerce_all(params: list[Any], statement: PreparedStatement) -> list[Any]:
    """The JSON parameters as the values asyncpg encodes for the statement's ``$n`` types."""
    types = statement.get_parameters()
    if len(params) != len(types):
        raise ToolError(
            f"The statement has {len(types)} parameter(s) ($1..${len(types)}) "
            f"but params holds {len(params)} value(s)."
            if types
            else f"The statement has no $n parameters but params holds {len(params)} value(s)."
        )
    values = []
    for index, (value, parameter_type) in enumerate(zip(params, types, strict=True)):
        try:
            values.append(coerce_parameter(value, parameter_type))
        except ParameterError as exc:
            raise ToolError(
                f"params[{index}] (${index + 1}, type {_type_name(parameter_type)}): {exc}"
            ) from None
    return values


def _rough_size(record: asyncpg.Record) -> int:
    return sum(len(value) if isinstance(value, str | bytes) else 16 for value in record)


def _type_name(type_: Any) -> str:
    name: str = type_.name
    if type_.schema and type_.schema != "pg_catalog":
        return f"{type_.schema}.{name}"
    return name
