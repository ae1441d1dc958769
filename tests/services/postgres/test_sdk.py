"""The official MCP Python SDK as the client: tool discovery, calls and errors over every transport."""

from __future__ import annotations

from mcp import Client, ClientSession
from mcp.client.sse import sse_client


async def test_tools_are_discovered_with_honest_annotations(read_only_url):
    async with Client(f"{read_only_url}/mcp", mode="auto") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {
        "list_databases",
        "execute_sql",
        "list_tables",
        "table_info",
        "query_stats",
        "explain_query",
    }
    for name in ("list_databases", "list_tables", "table_info", "query_stats", "explain_query"):
        assert tools[name].annotations.read_only_hint is True
    # In a read-only deployment execute_sql cannot write, and says so.
    assert tools["execute_sql"].annotations.read_only_hint is True
    assert tools["execute_sql"].annotations.destructive_hint is False
    assert tools["execute_sql"].input_schema["required"] == ["query"]
    assert "$1" in tools["execute_sql"].input_schema["properties"]["params"]["description"]
    assert tools["table_info"].input_schema["properties"]["table"]["maxLength"] == 128


async def test_stateless_client_runs_a_parameterised_query(read_only_url):
    async with Client(f"{read_only_url}/mcp", mode="auto") as client:
        result = await client.call_tool(
            "execute_sql",
            {"query": "SELECT name FROM customers WHERE country = $1 ORDER BY id", "params": ["CN"]},
        )
    assert result.is_error is False
    assert result.structured_content["rows"] == [["Wu Jian 吴健"]]
    assert result.structured_content["columns"] == [{"name": "name", "type": "text"}]


async def test_legacy_handshake_client_gets_errors_as_results(read_only_url):
    async with Client(f"{read_only_url}/mcp", mode="legacy") as client:
        refused = await client.call_tool("execute_sql", {"query": "COMMIT; DROP TABLE canary"})
        failed = await client.call_tool("execute_sql", {"query": "SELECT * FROM nowhere"})
        described = await client.call_tool("table_info", {"table": "products"})
    assert refused.is_error and "transaction control" in refused.content[0].text
    assert failed.is_error and "SQLSTATE 42P01" in failed.content[0].text
    assert described.structured_content["primary_key"]["columns"] == ["id"]


async def test_sse_session_lists_tables(read_only_url):
    async with sse_client(f"{read_only_url}/sse") as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("list_tables", {"schema": "sales"})
    assert result.structured_content["tables"][0]["name"] == "orders"


async def test_execute_sql_is_announced_as_destructive_in_read_write_mode(read_write_url):
    async with Client(f"{read_write_url}/mcp", mode="auto") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert tools["execute_sql"].annotations.read_only_hint is False
    assert tools["execute_sql"].annotations.destructive_hint is True
