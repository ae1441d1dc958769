"""Catalog queries behind list_databases, list_tables, table_info and query_stats.

Every name a caller gives (database, schema, table) reaches PostgreSQL as a bound parameter compared
with the catalogs; no caller text is ever formatted into SQL.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from libmcp import ToolError
from services.postgres.timestamp_text import timestamp_from_text

RELATION_KINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
}
LIST_LIMIT = 1000
# The timestamptz columns of the queries below.
TIMESTAMP_FIELDS = frozenset(
    {"stats_reset", "last_vacuum", "last_autovacuum", "last_analyze", "last_autoanalyze"}
)

DATABASES = """
SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding,
       pg_database_size(d.oid) AS size_bytes, pg_size_pretty(pg_database_size(d.oid)) AS size,
       shobj_description(d.oid, 'pg_database') AS comment
FROM pg_database d
WHERE d.datallowconn AND NOT d.datistemplate AND has_database_privilege(d.oid, 'CONNECT')
ORDER BY d.datname
"""

SCHEMA_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)"

TABLES = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS estimated_rows,
       CASE WHEN c.relkind IN ('r', 'm', 'p', 'f') THEN pg_total_relation_size(c.oid) END AS size_bytes,
       obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND CASE WHEN $1::text IS NULL
           THEN n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
           ELSE n.nspname = $1::text END
ORDER BY n.nspname, c.relname
LIMIT $2
"""

FIND_RELATION = """
SELECT c.oid, n.nspname AS schema, pg_table_is_visible(c.oid) AS visible
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2::text) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY pg_table_is_visible(c.oid) DESC, n.nspname
"""

RELATION = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, pg_get_userbyid(c.relowner) AS owner,
       obj_description(c.oid, 'pg_class') AS comment,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS estimated_rows,
       CASE WHEN c.relkind IN ('r', 'm', 'p', 'f') THEN pg_total_relation_size(c.oid) END AS size_bytes,
       CASE WHEN c.relkind IN ('r', 'm', 'p', 'f') THEN pg_relation_size(c.oid) END AS table_bytes,
       CASE WHEN c.relkind IN ('r', 'm', 'p', 'f') THEN pg_indexes_size(c.oid) END AS indexes_bytes,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS view_definition
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1
"""

COLUMNS = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default,
       CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END AS identity,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS generated,
       col_description(a.attrelid, a.attnum) AS comment
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

INDEXES = """
SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition, x.indisunique AS unique,
       x.indisprimary AS primary, x.indisvalid AS valid, pg_relation_size(x.indexrelid) AS size_bytes
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = $1
ORDER BY i.relname
"""

_KEY_COLUMNS = """
ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.attnum ORDER BY k.ord)
"""

CONSTRAINTS = f"""
SELECT con.conname AS name, con.contype::text AS type, pg_get_constraintdef(con.oid, true) AS definition,
       {_KEY_COLUMNS.format(keys="con.conkey", rel="con.conrelid")} AS columns,
       CASE WHEN con.contype = 'f' THEN
            format('%s.%s', quote_ident(fn.nspname), quote_ident(fc.relname)) END AS referenced_table,
       {_KEY_COLUMNS.format(keys="con.confkey", rel="con.confrelid")} AS referenced_columns,
       con.confupdtype::text AS on_update, con.confdeltype::text AS on_delete
FROM pg_constraint con
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = $1
ORDER BY con.contype, con.conname
"""

REFERENCED_BY = f"""
SELECT con.conname AS name, format('%s.%s', quote_ident(n.nspname), quote_ident(c.relname)) AS table,
       {_KEY_COLUMNS.format(keys="con.conkey", rel="con.conrelid")} AS columns
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f' AND con.confrelid = $1
ORDER BY 2, 1
"""

CONSTRAINT_TYPES = {
    "p": "primary key",
    "u": "unique",
    "c": "check",
    "x": "exclusion",
    "f": "foreign key",
    "t": "trigger",
    "n": "not null",
}
FK_ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}

STATEMENTS_EXTENSION = """
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

# {schema} is the extension's schema as read from pg_extension (quoted with quote_ident), never caller text.
TOP_STATEMENTS = """
SELECT s.query, s.calls, s.{total} AS total_time_ms, s.{mean} AS mean_time_ms, s.rows,
       s.shared_blks_hit AS shared_blocks_hit, s.shared_blks_read AS shared_blocks_read
FROM {schema}.pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY s.{total} DESC
LIMIT $1
"""

DATABASE_STATS = """
SELECT numbackends AS backends, xact_commit AS commits, xact_rollback AS rollbacks,
       blks_read AS blocks_read, blks_hit AS blocks_hit,
       round(blks_hit::numeric / nullif(blks_hit + blks_read, 0), 4)::float8 AS cache_hit_ratio,
       tup_returned AS tuples_returned, tup_fetched AS tuples_fetched, tup_inserted AS tuples_inserted,
       tup_updated AS tuples_updated, tup_deleted AS tuples_deleted, deadlocks, temp_bytes, stats_reset
FROM pg_stat_database WHERE datname = current_database()
"""

TABLE_STATS = """
SELECT t.schemaname AS schema, t.relname AS name, t.seq_scan AS seq_scans, t.seq_tup_read AS seq_tuples_read,
       t.idx_scan AS index_scans, t.idx_tup_fetch AS index_tuples_fetched, t.n_live_tup AS live_tuples,
       t.n_dead_tup AS dead_tuples, t.n_tup_ins AS inserted, t.n_tup_upd AS updated, t.n_tup_del AS deleted,
       round(io.heap_blks_hit::numeric / nullif(io.heap_blks_hit + io.heap_blks_read, 0), 4)::float8
           AS cache_hit_ratio,
       t.last_vacuum, t.last_autovacuum, t.last_analyze, t.last_autoanalyze
FROM pg_stat_user_tables t
LEFT JOIN pg_statio_user_tables io ON io.relid = t.relid
ORDER BY coalesce(t.seq_tup_read, 0) + coalesce(t.idx_tup_fetch, 0) DESC, t.schemaname, t.relname
LIMIT $1
"""

ENABLE_STATEMENTS = (
    "pg_stat_statements is not available in database {database}{why}; showing database and table statistics "
    "instead. To see the top statements: add shared_preload_libraries = 'pg_stat_statements' to "
    "postgresql.conf, restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements; in this database "
    "(Debian/Ubuntu ship it with the server; elsewhere install the postgresql-contrib package)."
)


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier (for catalog-provided names only)."""
    return '"' + name.replace('"', '""') + '"'


async def find_relation(connection: asyncpg.Connection, table: str, schema: str | None) -> int:
    """The OID of ``table`` (in ``schema``, else the search path first, else any schema), or a ToolError."""
    rows = await connection.fetch(FIND_RELATION, table, schema)
    if not rows and schema is None and "." in table:
        maybe_schema, _, maybe_table = table.partition(".")
        rows = await connection.fetch(FIND_RELATION, maybe_table, maybe_schema)
    if not rows:
        where = f" in schema {schema!r}" if schema else ""
        raise ToolError(
            f"No table or view named {table!r}{where}. list_tables shows the names (case-sensitive)."
        )
    if len(rows) > 1 and not rows[0]["visible"]:
        schemas = ", ".join(row["schema"] for row in rows)
        raise ToolError(f"{table!r} exists in several schemas ({schemas}): pass schema to choose one.")
    oid: int = rows[0]["oid"]
    return oid


def record_dict(record: asyncpg.Record) -> dict[str, Any]:
    """A catalog row as a dict; its ``timestamptz`` fields as ISO 8601 in UTC, however the connection
    fetched them (``timestamp_text.use_timestamp_text``)."""
    row = dict(record.items())
    for name in TIMESTAMP_FIELDS.intersection(row):
        row[name] = timestamp_from_text(row[name], utc=True)
    return row
