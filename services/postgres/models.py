"""Arguments and results of the postgres tools."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import Field

from libmcp import ToolInput, ToolOutput

NO_NUL = r"^[^\x00]+$"  # PostgreSQL names and startup parameters cannot hold NUL
DatabaseName = Field(
    default=None,
    min_length=1,
    max_length=63,
    pattern=NO_NUL,
    description="Database to use (see list_databases); default: the database of DATABASE_URL.",
)


class _CompactOutput(ToolOutput):
    def mcp_text(self) -> str:
        return self.model_dump_json(by_alias=True)


# list_databases -----------------------------------------------------------------------------------


class Database(ToolOutput):
    name: str = Field(description="Database name.")
    owner: str = Field(description="Owning role.")
    encoding: str = Field(description="Character set encoding, e.g. UTF8.")
    size_bytes: int | None = Field(description="On-disk size in bytes (null when not readable).")
    size: str | None = Field(description="On-disk size, human-readable.")
    comment: str | None = Field(default=None, description="COMMENT ON DATABASE, if any.")


class ListDatabasesResult(_CompactOutput):
    databases: list[Database] = Field(description="Databases the role may connect to, by name.")
    current: str = Field(description="The default database (from DATABASE_URL).")


# execute_sql ------------------------------------------------------------------------------------


class ExecuteSqlArgs(ToolInput):
    query: str = Field(
        min_length=1,
        max_length=1_000_000,
        description="One SQL statement. Put values in $1, $2 ... placeholders and pass them as params.",
    )
    params: list[Any] = Field(
        default_factory=list,
        max_length=10_000,
        description=(
            "Values of $1, $2 ...: JSON numbers, strings, booleans, null, arrays (array types), objects "
            "(for json/jsonb). Dates and timestamps as ISO 8601 strings, intervals as ISO 8601 durations "
            '(\'P1DT2H\'), bytea as base64, ranges as {"lower", "upper", "bounds": "[)"} or text '
            "('[1,5)'), multiranges as arrays of ranges. For any other syntax pass a string and cast: "
            "$1::text::interval."
        ),
    )
    database: str | None = DatabaseName
    max_rows: int | None = Field(
        default=None, ge=1, le=100_000, description="Row cap for this call; default POSTGRES_MAX_ROWS (1000)."
    )


class ColumnInfo(ToolOutput):
    name: str = Field(description="Column name as the query labels it.")
    type: str = Field(description="PostgreSQL type name (int4, text, numeric, timestamptz, text[], ...).")


class CutValue(ToolOutput):
    row: int = Field(description="Index of the row in rows.")
    column: int = Field(description="Index of the column in columns.")
    reason: Literal["too_large", "too_deep"] = Field(
        description=(
            "too_large: the value is null in rows, larger alone than the result budget; too_deep: a JSON "
            "value nested too deep to pass as JSON, given as its JSON text (a string) in rows."
        )
    )
    bytes: int | None = Field(description="Size of the value in bytes (its text), when too_large.")


class ExecuteSqlResult(_CompactOutput):
    columns: list[ColumnInfo] = Field(
        description="Result columns in order (empty for statements without rows)."
    )
    # Tuples (the schema is the same as for lists): rows come from the records without a copy per value.
    rows: list[tuple[Any, ...]] = Field(
        description=(
            "Rows as arrays in column order. numeric is a string; timestamps ISO 8601; intervals ISO 8601 "
            "durations; bytea base64; json/jsonb as JSON; NaN and infinities as strings; NULL as null."
        )
    )
    row_count: int = Field(description="Number of rows returned here.")
    truncated: bool = Field(
        description=(
            "True when rows or values are left out: more rows than max_rows, rows past the result budget "
            "(POSTGRES_MAX_RESULT_BYTES), or values larger than it (see cut_values). note says which."
        )
    )
    total_rows: int | None = Field(
        description="Rows the statement produced in all, when known (null if counting them took too long)."
    )
    command_tag: str | None = Field(
        description="PostgreSQL's command tag, e.g. 'UPDATE 3' or 'CREATE TABLE'."
    )
    rows_affected: int | None = Field(description="Rows inserted, updated, deleted or merged, for writes.")
    cut_values: list[CutValue] = Field(
        default_factory=list, description="Values not given as PostgreSQL has them, and why."
    )
    note: str | None = Field(
        default=None, description="What the result leaves out and the limit that decided it, when it does."
    )
    database: str = Field(description="Database the statement ran in.")

    def model_dump(
        self, *, mode: Literal["json", "python"] | str = "python", **options: Any
    ) -> dict[str, Any]:
        """In JSON mode (the ``structuredContent``), the rows are passed on as they are: they hold
        JSON-ready values by construction (``result_values.py``), and pydantic's walk over every value would
        cost more than the query. Any other use goes to pydantic."""
        if mode != "json" or options.keys() - {"by_alias"}:
            return super().model_dump(mode=mode, **options)
        return {
            "columns": [{"name": column.name, "type": column.type} for column in self.columns],
            "rows": self.rows,
            "row_count": self.row_count,
            "truncated": self.truncated,
            "total_rows": self.total_rows,
            "command_tag": self.command_tag,
            "rows_affected": self.rows_affected,
            "cut_values": [
                {"row": cut.row, "column": cut.column, "reason": cut.reason, "bytes": cut.bytes}
                for cut in self.cut_values
            ],
            "note": self.note,
            "database": self.database,
        }

    def mcp_text(self) -> str:
        return orjson.dumps(self.model_dump(mode="json")).decode()


# list_tables ------------------------------------------------------------------------------------


class ListTablesArgs(ToolInput):
    schema_name: str | None = Field(
        default=None,
        alias="schema",
        description="Schema to list; default: every schema but pg_catalog, information_schema and pg_toast.",
        min_length=1,
        max_length=128,
        pattern=NO_NUL,
    )
    database: str | None = DatabaseName

    model_config = {"populate_by_name": True}


class TableSummary(ToolOutput):
    schema_name: str = Field(alias="schema", description="Schema of the relation.")
    name: str = Field(description="Relation name.")
    kind: str = Field(description="table, partitioned table, view, materialized view or foreign table.")
    estimated_rows: int | None = Field(
        description="Planner estimate of the row count (null if never analyzed)."
    )
    size_bytes: int | None = Field(
        description="Total size on disk including indexes and TOAST (null for views)."
    )
    comment: str | None = Field(description="COMMENT ON the relation, if any.")

    model_config = {"populate_by_name": True}


class ListTablesResult(_CompactOutput):
    tables: list[TableSummary] = Field(description="Tables and views, by schema and name.")
    truncated: bool = Field(description="True when there were more than 1000 and the list was cut.")
    database: str = Field(description="Database listed.")


# table_info -------------------------------------------------------------------------------------


class TableInfoArgs(ToolInput):
    table: str = Field(
        min_length=1,
        max_length=128,
        pattern=NO_NUL,
        description="Table or view name, exactly as stored (case-sensitive, no quotes).",
    )
    schema_name: str | None = Field(
        default=None,
        alias="schema",
        description="Schema of the table; default: the first match on the search path, then any schema.",
        min_length=1,
        max_length=128,
        pattern=NO_NUL,
    )
    database: str | None = DatabaseName

    model_config = {"populate_by_name": True}


class ColumnDetail(ToolOutput):
    name: str = Field(description="Column name.")
    type: str = Field(description="Declared type, e.g. numeric(10,2) or timestamp with time zone.")
    nullable: bool = Field(description="False when the column is NOT NULL.")
    default: str | None = Field(description="Default expression, if any.")
    identity: str | None = Field(description="'always' or 'by default' for identity columns.")
    generated: str | None = Field(description="Generation expression of a stored generated column.")
    comment: str | None = Field(description="COMMENT ON COLUMN, if any.")


class IndexInfo(ToolOutput):
    name: str
    definition: str = Field(description="CREATE INDEX statement.")
    unique: bool
    primary: bool
    valid: bool
    size_bytes: int


class ForeignKey(ToolOutput):
    name: str
    columns: list[str]
    referenced_table: str = Field(description="schema.table the key points to.")
    referenced_columns: list[str]
    on_update: str
    on_delete: str
    definition: str


class ConstraintInfo(ToolOutput):
    name: str
    type: Literal["primary key", "unique", "check", "exclusion", "foreign key", "trigger", "not null"]
    columns: list[str]
    definition: str


class PrimaryKey(ToolOutput):
    name: str
    columns: list[str]


class IncomingReference(ToolOutput):
    name: str = Field(description="Foreign key constraint name.")
    table: str = Field(description="schema.table that references this table.")
    columns: list[str] = Field(description="Referencing columns in that table.")


class TableInfoResult(_CompactOutput):
    schema_name: str = Field(alias="schema")
    name: str
    kind: str = Field(description="table, partitioned table, view, materialized view or foreign table.")
    owner: str
    comment: str | None
    estimated_rows: int | None = Field(description="Planner estimate (null if never analyzed).")
    size_bytes: int | None = Field(description="Total size including indexes and TOAST.")
    table_bytes: int | None = Field(description="Size of the table's main data.")
    indexes_bytes: int | None = Field(description="Size of its indexes.")
    columns: list[ColumnDetail]
    primary_key: PrimaryKey | None
    indexes: list[IndexInfo]
    foreign_keys: list[ForeignKey]
    referenced_by: list[IncomingReference] = Field(description="Foreign keys in other tables pointing here.")
    constraints: list[ConstraintInfo] = Field(description="Every constraint, including the keys above.")
    view_definition: str | None = Field(description="SELECT of a view or materialized view.")
    database: str

    model_config = {"populate_by_name": True}


# query_stats ------------------------------------------------------------------------------------


class QueryStatsArgs(ToolInput):
    limit: int = Field(default=10, ge=1, le=100, description="How many statements or tables to return.")
    database: str | None = DatabaseName


class StatementStats(ToolOutput):
    query: str = Field(description="Normalised statement text ($1 for constants).")
    calls: int
    total_time_ms: float
    mean_time_ms: float
    rows: int = Field(description="Rows retrieved or affected in all calls.")
    shared_blocks_hit: int
    shared_blocks_read: int


class DatabaseStats(ToolOutput):
    backends: int = Field(description="Sessions connected now.")
    commits: int
    rollbacks: int
    blocks_read: int
    blocks_hit: int
    cache_hit_ratio: float | None = Field(description="blocks_hit / (blocks_hit + blocks_read).")
    tuples_returned: int
    tuples_fetched: int
    tuples_inserted: int
    tuples_updated: int
    tuples_deleted: int
    deadlocks: int
    temp_bytes: int
    stats_reset: str | None


class TableStats(ToolOutput):
    schema_name: str = Field(alias="schema")
    name: str
    seq_scans: int
    seq_tuples_read: int
    index_scans: int | None
    index_tuples_fetched: int | None
    live_tuples: int
    dead_tuples: int
    inserted: int
    updated: int
    deleted: int
    cache_hit_ratio: float | None = Field(description="Heap blocks found in shared buffers / blocks needed.")
    last_vacuum: str | None
    last_autovacuum: str | None
    last_analyze: str | None
    last_autoanalyze: str | None

    model_config = {"populate_by_name": True}


class QueryStatsResult(_CompactOutput):
    source: Literal["pg_stat_statements", "pg_stat_database"] = Field(
        description="pg_stat_statements when the extension is there, otherwise database and table statistics."
    )
    statements: list[StatementStats] = Field(description="Top statements by total execution time.")
    database_stats: DatabaseStats | None = Field(description="pg_stat_database for this database (fallback).")
    tables: list[TableStats] = Field(description="Busiest tables by rows read (fallback).")
    note: str | None = Field(description="How to enable pg_stat_statements when it is missing.")
    database: str


# explain_query ----------------------------------------------------------------------------------


class ExplainQueryArgs(ToolInput):
    query: str = Field(
        min_length=1, max_length=1_000_000, description="One statement to plan, with $n placeholders."
    )
    params: list[Any] = Field(
        default_factory=list, max_length=10_000, description="Values of $1, $2 ... as in execute_sql."
    )
    analyze: bool = Field(
        default=False,
        description=(
            "Run the statement to measure real times and row counts (EXPLAIN ANALYZE, BUFFERS). Only in "
            "read-write mode; the statement's changes are rolled back."
        ),
    )
    database: str | None = DatabaseName


class ExplainQueryResult(_CompactOutput):
    plan: dict[str, Any] = Field(
        description="The plan tree of EXPLAIN (FORMAT JSON): node type, costs, rows, children."
    )
    total_cost: float | None = Field(description="Estimated total cost of the top node.")
    estimated_rows: float | None = Field(description="Estimated rows of the top node.")
    planning_time_ms: float | None = Field(description="Planning time (analyze only).")
    execution_time_ms: float | None = Field(description="Execution time (analyze only).")
    analyzed: bool
    database: str
