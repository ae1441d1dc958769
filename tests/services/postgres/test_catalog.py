"""list_databases, list_tables and table_info describe the catalog, and names are only ever data."""

from __future__ import annotations

import pytest

from tests.services.postgres.support import call, error, ok


async def test_databases_are_those_the_role_may_connect_to(read_only_url):
    result = ok(await call(read_only_url, "list_databases"))
    names = [database["name"] for database in result["databases"]]
    assert {"appdb", "otherdb", "postgres"} <= set(names)
    assert "lockeddb" not in names and "template0" not in names
    appdb = next(database for database in result["databases"] if database["name"] == "appdb")
    assert (appdb["owner"], appdb["encoding"]) == ("mcp_app", "UTF8")
    assert appdb["size_bytes"] > 0 and appdb["size"].endswith(("kB", "MB"))
    assert result["current"] == "appdb"


async def test_tables_and_views_are_listed_with_kind_rows_and_size(read_only_url):
    result = ok(await call(read_only_url, "list_tables"))
    tables = {(table["schema"], table["name"]): table for table in result["tables"]}
    assert tables[("public", "customers")]["kind"] == "table"
    assert tables[("public", "customers")]["estimated_rows"] == 3
    assert tables[("public", "customers")]["size_bytes"] > 0
    assert tables[("public", "customers")]["comment"] == "People who placed at least one order."
    assert tables[("public", "order_totals")]["kind"] == "view"
    assert tables[("public", "order_totals")]["size_bytes"] is None
    assert tables[("public", "customer_counts")]["kind"] == "materialized view"
    assert tables[("public", "events")]["kind"] == "partitioned table"
    assert ("sales", "orders") in tables
    assert not any(schema in {"pg_catalog", "information_schema"} for schema, _ in tables)
    assert result["truncated"] is False


async def test_tables_can_be_listed_for_one_schema(read_only_url):
    result = ok(await call(read_only_url, "list_tables", {"schema": "sales"}))
    assert [(table["schema"], table["name"]) for table in result["tables"]] == [("sales", "orders")]
    assert "Schema 'nope' does not exist" in error(
        await call(read_only_url, "list_tables", {"schema": "nope"})
    )


async def test_table_info_describes_columns_keys_and_size(read_only_url):
    info = ok(await call(read_only_url, "table_info", {"table": "orders"}))
    assert (info["schema"], info["name"], info["kind"], info["owner"]) == (
        "public",
        "orders",
        "table",
        "mcp_app",
    )
    assert info["comment"] == "One row per checkout."
    columns = {column["name"]: column for column in info["columns"]}
    assert list(columns) == ["id", "customer_id", "ordered_on", "shipped_at", "delivery_delay", "note"]
    assert columns["id"] == {
        "name": "id",
        "type": "bigint",
        "nullable": False,
        "default": None,
        "identity": "always",
        "generated": None,
        "comment": None,
    }
    assert (
        columns["shipped_at"]["type"] == "timestamp without time zone" and columns["shipped_at"]["nullable"]
    )
    assert info["primary_key"] == {"name": "orders_pkey", "columns": ["id"]}
    assert {index["name"] for index in info["indexes"]} == {"orders_pkey", "orders_customer_id_idx"}
    [foreign_key] = info["foreign_keys"]
    assert foreign_key["columns"] == ["customer_id"]
    assert (foreign_key["referenced_table"], foreign_key["referenced_columns"]) == (
        "public.customers",
        ["id"],
    )
    assert (foreign_key["on_delete"], foreign_key["on_update"]) == ("no action", "no action")
    referenced_by = {(reference["table"], tuple(reference["columns"])) for reference in info["referenced_by"]}
    assert referenced_by == {("public.order_items", ("order_id",)), ("public.invoices", ("order_id",))}
    assert info["estimated_rows"] == 3 and info["size_bytes"] >= info["table_bytes"] > 0
    assert info["view_definition"] is None


async def test_table_info_shows_defaults_generated_columns_and_checks(read_only_url):
    info = ok(await call(read_only_url, "table_info", {"table": "invoices"}))
    columns = {column["name"]: column for column in info["columns"]}
    assert columns["id"]["identity"] == "by default"
    assert columns["gross"]["generated"] == "(net * 1.2)" and columns["gross"]["default"] is None
    assert columns["gross"]["comment"] == "Net plus 20 % VAT."
    constraints = {constraint["name"]: constraint for constraint in info["constraints"]}
    assert constraints["invoices_net_positive"]["type"] == "check"
    assert constraints["invoices_net_positive"]["definition"] == "CHECK (net > 0::numeric)"
    assert info["foreign_keys"][0]["on_delete"] == "set null"
    customers = ok(await call(read_only_url, "table_info", {"table": "customers"}))
    defaults = {column["name"]: column["default"] for column in customers["columns"]}
    assert defaults["country"] == "'FR'::bpchar" and defaults["created_at"] == "now()"


async def test_table_info_shows_a_view_definition(read_only_url):
    info = ok(await call(read_only_url, "table_info", {"table": "order_totals"}))
    assert info["kind"] == "view" and info["size_bytes"] is None
    assert "sum(i.quantity::numeric * p.price)" in info["view_definition"]


async def test_schema_picks_between_same_named_tables(read_only_url):
    public = ok(await call(read_only_url, "table_info", {"table": "orders"}))
    sales = ok(await call(read_only_url, "table_info", {"table": "orders", "schema": "sales"}))
    dotted = ok(await call(read_only_url, "table_info", {"table": "sales.orders"}))
    assert public["schema"] == "public"
    assert sales["schema"] == dotted["schema"] == "sales"
    assert [column["name"] for column in sales["columns"]] == ["id", "region"]


async def test_unknown_tables_are_reported_with_a_way_forward(read_only_url):
    text = error(await call(read_only_url, "table_info", {"table": "Orders"}))
    assert "No table or view named 'Orders'" in text and "list_tables" in text


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("table_info", {"table": "orders; DROP TABLE canary"}),
        ("table_info", {"table": "orders' OR '1'='1"}),
        ("table_info", {"table": 'orders"; DROP TABLE canary; --'}),
        ("table_info", {"table": "orders", "schema": "public'; DROP TABLE canary; --"}),
        ("table_info", {"table": "pg_class) OR (1=1"}),
        ("list_tables", {"schema": "public' OR '1'='1"}),
        ("list_tables", {"schema": "x; DROP TABLE canary"}),
        ("execute_sql", {"query": "SELECT 1", "database": "appdb; DROP TABLE canary"}),
        ("execute_sql", {"query": "SELECT 1", "database": "appdb' host=evil"}),
        ("query_stats", {"database": "otherdb' OR '1'='1"}),
        ("list_tables", {"database": 'appdb" dbname=otherdb'}),
        ("table_info", {"table": "orders", "database": "appdb options='-c search_path=evil'"}),
        ("explain_query", {"query": "SELECT 1", "database": "postgres' user=postgres"}),
    ],
)
async def test_injection_through_identifier_arguments_finds_nothing(read_only_url, admin, tool, arguments):
    error(await call(read_only_url, tool, arguments))
    assert await admin.fetchval("SELECT count(*) FROM canary") == 3


async def test_names_that_look_like_sql_are_matched_as_data(read_only_url):
    name = 'Weird "Name"; DROP TABLE canary; --'
    info = ok(await call(read_only_url, "table_info", {"table": name}))
    assert info["name"] == name and [column["name"] for column in info["columns"]] == ["id"]
    listed = ok(await call(read_only_url, "list_tables", {"schema": "public"}))
    assert name in [table["name"] for table in listed["tables"]]


async def test_identifier_arguments_refuse_nul_bytes(read_only_url):
    text = error(await call(read_only_url, "table_info", {"table": "orders\x00"}))
    assert "table: String should match pattern" in text
