"""The byte budget of one execute_sql result, spent while the result is built.

A reply carries the result twice (as its text block and as ``structuredContent``, where the text is JSON
inside a JSON string and may double), so one result gets a third of MCP_MAX_REPLY_BYTES, or less with
POSTGRES_MAX_RESULT_BYTES (:func:`result_budget`). The budget is kept on both sides of the wire:

* On the server (:func:`guard`): a statement that returns rows runs wrapped as
  ``WITH mcp_sse_result(c1, ...) AS (<statement>) SELECT ... FROM mcp_sse_result``. A value longer than
  the whole budget (as text or JSON) is NULL before it leaves PostgreSQL (its size is sent instead), and a
  running total of the rows' sizes NULLs every value of the rows past the budget. However large the
  values or many the rows, the service receives about one budget of data and the row cap's worth of
  NULLs, and it still learns how many rows there were.
* In the service (:func:`fit`): the rows are measured as the JSON they become, exactly; rows stop where
  the next would not fit, and a value nested too deep for a JSON encoder is replaced by its JSON text.

A statement that cannot be wrapped (SHOW, EXPLAIN, a data-modifying WITH, MERGE ... RETURNING, or so
many columns, about 550, that the guard's would pass PostgreSQL's 1,664) runs as it is, read through a
cursor 64 rows at a time until the rows read pass the budget (``StatementRunner``): a single value is then
bounded only by PostgreSQL (1 GB a field) and the statement timeout. In read-only mode only the
widest queries are not wrapped.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

import orjson
from asyncpg.types import Attribute

from services.postgres.connection_codecs import JsonText

REPLY_COPIES = 3  # the structured result, and the text block, which escaping in a JSON string can double
REPLY_ENVELOPE_BYTES = 8192  # the JSON-RPC envelope and the result's other fields
MIN_BUDGET = 1024

RESULT = "mcp_sse_result"
# Types whose values are small and of bounded size, by OID (the same in every PostgreSQL): not measured
# on the server, each counted as FIXED_VALUE_BYTES. Every other type is measured by the length of its text.
FIXED_SIZE_OIDS = frozenset(
    {
        16,  # bool
        18,  # "char"
        19,  # name
        20,  # int8
        21,  # int2
        23,  # int4
        26,  # oid
        27,  # tid
        28,  # xid
        29,  # cid
        600,  # point
        601,  # lseg
        603,  # box
        628,  # line
        650,  # cidr
        700,  # float4
        701,  # float8
        718,  # circle
        774,  # macaddr8
        790,  # money
        829,  # macaddr
        869,  # inet
        1082,  # date
        1083,  # time
        1114,  # timestamp
        1184,  # timestamptz
        1186,  # interval
        1266,  # timetz
        2278,  # void
        2950,  # uuid
        3220,  # pg_lsn
        5069,  # xid8
    }
)
# Types with their own octet_length(), which reads the stored length without decompressing the value.
# Every other type is measured as JSON (to_json): its text would double the quotes of a record nested in a
# record at every level.
OCTET_LENGTH_OIDS = frozenset({17, 25, 1042, 1043})  # bytea, text, bpchar, varchar
FIXED_VALUE_BYTES = 32
VALUE_OVERHEAD_BYTES = 4  # quotes and a comma
ROW_OVERHEAD_BYTES = 4
# How deep a row value sits in a reply: a JSON-RPC batch, the response, result, structuredContent, rows,
# the row. A value is measured wrapped as deep, so that what passes here passes the reply's encoder.
REPLY_NESTING = 6
CUT_VALUE_BYTES = 96  # what one entry of cut_values adds to the result

CutReason = Literal["too_large", "too_deep"]


def result_budget(configured: int, max_reply_bytes: int) -> int:
    """The bytes of JSON one result may take: a third of the reply budget (MCP_MAX_REPLY_BYTES), or
    ``configured`` (POSTGRES_MAX_RESULT_BYTES) when that is set and smaller."""
    share = max(MIN_BUDGET, (max_reply_bytes - REPLY_ENVELOPE_BYTES) // REPLY_COPIES)
    return min(configured, share) if configured else share


@dataclass(frozen=True, slots=True)
class Guard:
    """A statement wrapped so that PostgreSQL keeps what is over the budget; see :func:`guard`.

    Its records hold the ``width`` values of the statement's columns, then an array with the size of
    each column in ``measured`` whose value was cut (NULL when none was), then the running total, then
    the NULL copy of every column described at :func:`guard`.
    """

    sql: str
    width: int
    measured: tuple[int, ...]
    budget: int

    def rows_within(self, records: Sequence[Any]) -> int:
        """How many of ``records`` (from the start) the server sent within the budget."""
        total = self.width + 1
        if not records or records[-1][total] <= self.budget:  # a running total: the last is the largest
            return len(records)
        return bisect.bisect_right(records, self.budget, key=itemgetter(total))

    def cuts(self, records: Sequence[Any]) -> list[CutValue]:
        """The values the server replaced by NULL for being longer than the whole budget."""
        found = []
        for row, sizes in enumerate(map(itemgetter(self.width), records)):
            if sizes is not None:
                for column, size in zip(self.measured, sizes, strict=True):
                    if size is not None:
                        found.append(CutValue(row, column, "too_large", size))
        return found


def guard(statement_sql: str, attributes: Sequence[Attribute], budget: int) -> Guard:
    """The statement wrapped so that values and rows over ``budget`` bytes stay on the server.

    ``statement_sql`` is the statement without a trailing semicolon. The rows keep their order: the
    running total is a window over the rows as the statement returns them, with no ORDER BY of its own.
    The records end with a copy of every column, always NULL (the lateral join finds no row): it makes the
    guard's result type follow the statement's, so that a cached guard whose statement now returns other
    columns (a table changed under ``SELECT *``) fails as a stale statement instead of answering in the
    old shape.
    """
    width = len(attributes)
    names = [f"c{index + 1}" for index in range(width)]
    measured = tuple(
        index for index, attribute in enumerate(attributes) if attribute.type.oid not in FIXED_SIZE_OIDS
    )
    size_of = {index: f"mcp_sse_s{index + 1}" for index in measured}
    sizes = []
    for index, size in size_of.items():
        value = f"r.{names[index]}"
        text = value if attributes[index].type.oid in OCTET_LENGTH_OIDS else f"to_json({value})::text"
        sizes.append(f"octet_length({text}) AS {size}")
    fixed = ROW_OVERHEAD_BYTES + (width - len(measured)) * (FIXED_VALUE_BYTES + VALUE_OVERHEAD_BYTES)
    kept = [
        f"CASE WHEN {size} <= {budget} THEN {size} + {VALUE_OVERHEAD_BYTES} ELSE 0 END"
        for size in size_of.values()
    ]
    row_size = " + ".join([str(fixed), *kept])
    row = "mcp_sse_totals"
    outputs = []
    for index, name in enumerate(names):
        small = f" AND {row}.{size_of[index]} <= {budget}" if index in size_of else ""
        outputs.append(f"CASE WHEN {row}.mcp_sse_total <= {budget}{small} THEN {row}.{name} END")
    if measured:
        over = " OR ".join(f"{row}.{size} > {budget}" for size in size_of.values())
        each = ", ".join(
            f"CASE WHEN {row}.{size} > {budget} THEN {row}.{size} END" for size in size_of.values()
        )
        outputs.append(f"CASE WHEN {over} THEN ARRAY[{each}] END")
    else:
        outputs.append("NULL::int4[]")
    outputs += [f"{row}.mcp_sse_total", "mcp_sse_shape.*"]
    # OFFSET 0 keeps the sizes in their own subquery, computed once per row rather than at every use.
    sql = (
        f"WITH {RESULT}({', '.join(names)}) AS (\n{statement_sql}\n) "
        f"SELECT {', '.join(outputs)} FROM ("
        f"SELECT *, sum({row_size}) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS mcp_sse_total "
        f"FROM (SELECT {', '.join(['r.*', *sizes])} FROM {RESULT} AS r OFFSET 0) AS mcp_sse_sized"
        f") AS {row} LEFT JOIN LATERAL (SELECT {row}.* WHERE false) AS mcp_sse_shape ON true"
    )
    return Guard(sql, width, measured, budget)


@dataclass(slots=True)
class CutValue:
    """One value that is not in the result as PostgreSQL has it: ``too_large`` (NULL in the rows; ``bytes``
    is the length of its text) or ``too_deep`` (its JSON text, a string, in the rows)."""

    row: int
    column: int
    reason: CutReason
    bytes: int | None


@dataclass(slots=True)
class Fitted:
    rows: list[tuple[Any, ...]]
    cut: list[CutValue]
    over_budget: bool  # rows were left out: the next one would have passed the budget


def fit(
    rows: list[tuple[Any, ...]], cut: list[CutValue], budget: int, json_columns: Sequence[int] = ()
) -> Fitted:
    """The leading ``rows`` whose JSON fits in ``budget`` bytes, with what had to be changed for it.

    ``cut`` holds what the server cut already; ``json_columns`` are the columns of json or jsonb values,
    where one too deep to parse came as its text. A value too deep for the reply's encoder becomes its
    JSON text (or NULL, deeper still). When even the first row does not fit, its largest values are cut
    until it does.
    """
    cut = cut + [
        CutValue(index, column, "too_deep", None)
        for column in json_columns
        for index, row in enumerate(rows)
        if type(row[column]) is JsonText
    ]
    spent = CUT_VALUE_BYTES * len(cut)
    try:
        if spent + _encoded_size(rows, REPLY_NESTING - 2) <= budget:
            return Fitted(rows, cut, False)
    except orjson.JSONEncodeError:
        pass
    kept: list[tuple[Any, ...]] = []
    over_budget = False
    for index, row in enumerate(rows):
        before = len(cut)
        row, size = _encodable(row, index, cut)
        size += CUT_VALUE_BYTES * (len(cut) - before)
        if spent + size > budget and not kept:
            row, size = _shrunk(row, index, budget - spent, size, cut)
        if spent + size > budget:
            over_budget = True
            break
        kept.append(row)
        spent += size + 1
    return Fitted(kept, [entry for entry in cut if entry.row < len(kept)], over_budget)


def _encoded_size(value: Any, nesting: int) -> int:
    """The length of ``value`` as JSON, checked at the depth it sits at in the reply."""
    for _ in range(nesting):
        value = [value]
    return len(orjson.dumps(value)) - 2 * nesting


def _encodable(row: tuple[Any, ...], index: int, cut: list[CutValue]) -> tuple[tuple[Any, ...], int]:
    """``row`` with every value the reply's encoder refuses (nested too deep) replaced, and its size."""
    try:
        return row, _encoded_size(row, REPLY_NESTING - 1)
    except orjson.JSONEncodeError:
        pass
    values = list(row)
    for column, value in enumerate(values):
        try:
            _encoded_size(value, REPLY_NESTING)
        except orjson.JSONEncodeError:
            values[column] = _as_text(value)
            cut.append(CutValue(index, column, "too_deep", None))
    fixed = tuple(values)
    return fixed, _encoded_size(fixed, REPLY_NESTING - 1)


def _as_text(value: Any) -> JsonText | None:
    try:
        return JsonText(json.dumps(value, ensure_ascii=False))
    except (RecursionError, TypeError, ValueError):
        return None


def _shrunk(
    row: tuple[Any, ...], index: int, room: int, size: int, cut: list[CutValue]
) -> tuple[tuple[Any, ...], int]:
    """``row`` (``size`` bytes) with its largest values NULL until it fits in ``room`` bytes."""
    values = list(row)
    largest = sorted(
        ((len(orjson.dumps(value)), column) for column, value in enumerate(values) if value is not None),
        reverse=True,
    )
    for value_size, column in largest:
        if size <= room:
            break
        values[column] = None
        cut.append(CutValue(index, column, "too_large", value_size))
        size += len(b"null") - value_size + CUT_VALUE_BYTES
    return tuple(values), size


def columns_size(columns: Sequence[Any]) -> int:
    """What the ``columns`` of a result take in it, with its other fields."""
    return REPLY_ENVELOPE_BYTES // 4 + sum(len(column.name) + len(column.type) + 32 for column in columns)


def note(
    *, shown: int, max_rows: int | None, over_budget: bool, cut: Sequence[CutValue], result_budget: int
) -> str | None:
    """What a result leaves out or changes and which setting decides it, for the model to act on."""
    parts = []
    if over_budget:
        parts.append(
            f"Rows stop after {shown}: the next would take the result past {result_budget:,} bytes, the "
            "result budget (POSTGRES_MAX_RESULT_BYTES, at most a third of MCP_MAX_REPLY_BYTES). Select "
            "fewer or narrower columns, or fetch the rest in pages "
            "(WHERE key > last key ORDER BY key LIMIT n)."
        )
    elif max_rows is not None:
        parts.append(
            f"Rows stop after {shown}: max_rows is {max_rows} (its default is POSTGRES_MAX_ROWS). Raise "
            "max_rows or fetch the rest in pages (WHERE key > last key ORDER BY key LIMIT n)."
        )
    large = sum(entry.reason == "too_large" for entry in cut)
    if large:
        parts.append(
            f"{large} value(s) are null here because each alone is larger than the result budget of "
            f"{result_budget:,} bytes (POSTGRES_MAX_RESULT_BYTES); cut_values lists them with their size. "
            "Select a part of such a value, e.g. left(column, 10000) or substring(column from n for m)."
        )
    deep = len(cut) - large
    if deep:
        parts.append(
            f"{deep} value(s) are nested too deep to pass as JSON (past about 250 levels) and are given as "
            "their JSON text, a string; cut_values lists them."
        )
    return " ".join(parts) or None
