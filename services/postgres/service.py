"""The postgres service: query and inspect PostgreSQL databases, read-only unless configured otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import version

import asyncpg

from libmcp import CheckContext, CheckResult, Service, StartupContext, ToolContext, ToolError
from services.postgres import catalog
from services.postgres.backend import Databases
from services.postgres.budget import result_budget
from services.postgres.models import (
    ColumnDetail,
    ColumnInfo,
    ConstraintInfo,
    CutValue,
    Database,
    DatabaseStats,
    ExecuteSqlArgs,
    ExecuteSqlResult,
    ExplainQueryArgs,
    ExplainQueryResult,
    ForeignKey,
    IncomingReference,
    IndexInfo,
    ListDatabasesResult,
    ListTablesArgs,
    ListTablesResult,
    PrimaryKey,
    QueryStatsArgs,
    QueryStatsResult,
    StatementStats,
    TableInfoArgs,
    TableInfoResult,
    TableStats,
    TableSummary,
)
from services.postgres.settings import PostgresSettings
from services.postgres.statements import StatementRunner

VERSION = version("mcp-sse")


@dataclass(frozen=True, slots=True)
class PostgresState:
    """One pool per database (opened lazily) and the runner that applies the statement rules."""

    databases: Databases
    runner: StatementRunner


service: Service[PostgresSettings, PostgresState] = Service(
    "postgres",
    version=VERSION,
    title="PostgreSQL",
    instructions=(
        "Query and inspect PostgreSQL. Start with list_tables and table_info to learn the schema, then "
        "execute_sql with $1, $2 ... placeholders and params for values. Unless the deployment is read-write "
        "only queries run (in a READ ONLY transaction). Results are capped in rows and bytes (truncated, "
        "note and total_rows say so)."
    ),
    settings_class=PostgresSettings,
)
Context = ToolContext[PostgresSettings, PostgresState]


@service.tool(title="List databases", read_only=True, idempotent=True)
async def list_databases(ctx: Context) -> ListDatabasesResult:
    """List the databases on the server that this service's role may connect to: name, owner, encoding
    and size. Pass one of these names as `database` to the other tools."""
    databases = ctx.state.databases
    async with databases.connection(client_id=ctx.client_id) as connection:
        rows = await connection.fetch(catalog.DATABASES)
    return ListDatabasesResult(
        databases=[Database(**catalog.record_dict(row)) for row in rows], current=databases.default_database
    )


@service.tool(
    title="Run SQL",
    read_only=False,
    destructive=True,
    idempotent=False,
    hints=lambda settings: {"read_only": settings.read_only, "destructive": not settings.read_only},
)
async def execute_sql(args: ExecuteSqlArgs, ctx: Context) -> ExecuteSqlResult:
    """Run exactly one SQL statement and return its columns (name, type) and rows as JSON.

    Pass values as $1, $2 ... placeholders with `params` instead of writing them into the SQL. Rows are
    capped at `max_rows` (default 1000) and the result at a byte budget (POSTGRES_MAX_RESULT_BYTES):
    `truncated` tells when rows or values were left out, `note` why, `total_rows` how many rows there were;
    a single value larger than the budget is null and listed in `cut_values`.
    Writes return the command tag and rows affected. In read-only mode (the default) only queries run,
    inside a READ ONLY transaction; DDL, DML, SET, COPY, DO, transaction control and side-effect functions
    are refused. Every statement has a timeout (POSTGRES_STATEMENT_TIMEOUT_S). A PostgreSQL error comes
    back with its SQLSTATE, message, detail and hint."""
    databases, runner = ctx.state.databases, ctx.state.runner
    max_rows = args.max_rows or ctx.settings.postgres_max_rows
    async with databases.connection(args.database, client_id=ctx.client_id) as connection:
        result = await runner.execute(connection, args.query, args.params, max_rows)
    # model_construct: the rows are already JSON-ready; validating every value again would cost more
    # than running the query.
    return ExecuteSqlResult.model_construct(
        columns=[ColumnInfo.model_construct(name=column.name, type=column.type) for column in result.columns],
        rows=result.rows,
        row_count=len(result.rows),
        truncated=result.truncated,
        total_rows=result.total_rows,
        command_tag=result.command_tag,
        rows_affected=result.rows_affected,
        cut_values=[
            CutValue.model_construct(row=cut.row, column=cut.column, reason=cut.reason, bytes=cut.bytes)
            for cut in result.cut_values
        ],
        note=result.note,
        database=databases.database_name(args.database),
    )


@service.tool(title="List tables and views", read_only=True, idempotent=True)
async def list_tables(args: ListTablesArgs, ctx: Context) -> ListTablesResult:
    """List tables, partitioned tables, views, materialized views and foreign tables with their kind,
    estimated row count, total size and comment. Without `schema`, every user schema is listed."""
    databases = ctx.state.databases
    async with databases.connection(args.database, client_id=ctx.client_id) as connection:
        if args.schema_name is not None and not await connection.fetchval(
            catalog.SCHEMA_EXISTS, args.schema_name
        ):
            raise ToolError(
                f"Schema {args.schema_name!r} does not exist in database "
                f"{databases.database_name(args.database)!r}."
            )
        rows = await connection.fetch(catalog.TABLES, args.schema_name, catalog.LIST_LIMIT + 1)
    tables = [
        TableSummary(**{**catalog.record_dict(row), "kind": catalog.RELATION_KINDS[row["kind"]]})
        for row in rows[: catalog.LIST_LIMIT]
    ]
    return ListTablesResult(
        tables=tables,
        truncated=len(rows) > catalog.LIST_LIMIT,
        database=databases.database_name(args.database),
    )


@service.tool(title="Describe a table", read_only=True, idempotent=True)
async def table_info(args: TableInfoArgs, ctx: Context) -> TableInfoResult:
    """Describe one table or view: columns (type, nullable, default, comment), primary key, indexes,
    foreign keys both ways, constraints, estimated rows and size; the definition of a view. The name is
    matched exactly (case-sensitive, without quotes); `schema` picks among same-named tables."""
    databases = ctx.state.databases
    async with databases.connection(args.database, client_id=ctx.client_id) as connection:
        oid = await catalog.find_relation(connection, args.table, args.schema_name)
        relation = await connection.fetchrow(catalog.RELATION, oid)
        columns = await connection.fetch(catalog.COLUMNS, oid)
        indexes = await connection.fetch(catalog.INDEXES, oid)
        constraints = await connection.fetch(catalog.CONSTRAINTS, oid)
        incoming = await connection.fetch(catalog.REFERENCED_BY, oid)
    primary = next((row for row in constraints if row["type"] == "p"), None)
    return TableInfoResult(
        **{**catalog.record_dict(relation), "kind": catalog.RELATION_KINDS[relation["kind"]]},
        columns=[ColumnDetail(**catalog.record_dict(row)) for row in columns],
        primary_key=PrimaryKey(name=primary["name"], columns=primary["columns"]) if primary else None,
        indexes=[IndexInfo(**catalog.record_dict(row)) for row in indexes],
        foreign_keys=[
            ForeignKey(
                name=row["name"],
                columns=row["columns"],
                referenced_table=row["referenced_table"],
                referenced_columns=row["referenced_columns"],
                on_update=catalog.FK_ACTIONS.get(row["on_update"], row["on_update"]),
                on_delete=catalog.FK_ACTIONS.get(row["on_delete"], row["on_delete"]),
                definition=row["definition"],
            )
            for row in constraints
            if row["type"] == "f"
        ],
        referenced_by=[IncomingReference(**catalog.record_dict(row)) for row in incoming],
        constraints=[
            ConstraintInfo(
                name=row["name"],
                type=catalog.CONSTRAINT_TYPES.get(row["type"], "check"),  # type: ignore[arg-type]
                columns=row["columns"],
                definition=row["definition"],
            )
            for row in constraints
        ],
        database=databases.database_name(args.database),
    )


@service.tool(title="Query statistics", read_only=True, idempotent=True)
async def query_stats(args: QueryStatsArgs, ctx: Context) -> QueryStatsResult:
    """Show where the database spends its time: the top statements by total execution time from
    pg_stat_statements (calls, mean and total time, rows) when the extension is installed; otherwise
    database statistics (commits, cache hit ratio, tuples, deadlocks) and the busiest tables (scans,
    tuples, dead tuples, last vacuum/analyze), with a note on how to enable pg_stat_statements."""
    databases = ctx.state.databases
    name = databases.database_name(args.database)
    async with databases.connection(args.database, client_id=ctx.client_id) as connection:
        schema = await connection.fetchval(catalog.STATEMENTS_EXTENSION)
        why = " (the extension is not created here)"
        if schema is not None:
            modern = connection.get_server_version().major >= 13
            query = catalog.TOP_STATEMENTS.format(
                schema=catalog.quote_ident(schema),
                total="total_exec_time" if modern else "total_time",
                mean="mean_exec_time" if modern else "mean_time",
            )
            try:
                async with connection.transaction(readonly=True):
                    rows = await connection.fetch(query, args.limit)
            except asyncpg.ObjectNotInPrerequisiteStateError:
                why = " (the extension exists but its library is not in shared_preload_libraries)"
            else:
                return QueryStatsResult(
                    source="pg_stat_statements",
                    statements=[StatementStats(**catalog.record_dict(row)) for row in rows],
                    database_stats=None,
                    tables=[],
                    note=None,
                    database=name,
                )
        database_row = await connection.fetchrow(catalog.DATABASE_STATS)
        table_rows = await connection.fetch(catalog.TABLE_STATS, args.limit)
    return QueryStatsResult(
        source="pg_stat_database",
        statements=[],
        database_stats=DatabaseStats(**catalog.record_dict(database_row)) if database_row else None,
        tables=[TableStats(**catalog.record_dict(row)) for row in table_rows],
        note=catalog.ENABLE_STATEMENTS.format(database=name, why=why),
        database=name,
    )


@service.tool(title="Explain a query", read_only=True, idempotent=True)
async def explain_query(args: ExplainQueryArgs, ctx: Context) -> ExplainQueryResult:
    """Show PostgreSQL's plan for one statement as JSON (EXPLAIN FORMAT JSON): node types, estimated
    costs and rows. With analyze=true (read-write mode only) the statement really runs to report actual
    times, rows and buffers, inside a transaction that is rolled back afterwards."""
    databases, runner = ctx.state.databases, ctx.state.runner
    async with databases.connection(args.database, client_id=ctx.client_id) as connection:
        explained = await runner.explain(connection, args.query, args.params, args.analyze)
    plan = explained.get("Plan", {})
    return ExplainQueryResult(
        plan=plan,
        total_cost=plan.get("Total Cost"),
        estimated_rows=plan.get("Plan Rows"),
        planning_time_ms=explained.get("Planning Time"),
        execution_time_ms=explained.get("Execution Time"),
        analyzed=args.analyze,
        database=databases.database_name(args.database),
    )


@service.lifespan
async def open_databases(ctx: StartupContext[PostgresSettings]) -> AsyncIterator[PostgresState]:
    settings, server_settings = ctx.settings, ctx.server_settings
    # Pools open lazily: start-up never waits for PostgreSQL.
    databases = Databases(
        settings, client_share=server_settings.client_share, queue_timeout_s=server_settings.queue_timeout_s
    )
    runner = StatementRunner(
        read_only=settings.read_only,
        statement_timeout_s=settings.postgres_statement_timeout_s,
        result_budget=result_budget(settings.postgres_max_result_bytes, server_settings.max_reply_bytes),
    )
    try:
        yield PostgresState(databases, runner)
    finally:
        await databases.close()


@service.health_check("database")
async def database(ctx: CheckContext[PostgresSettings, PostgresState]) -> CheckResult:
    return await ctx.state.databases.check()
