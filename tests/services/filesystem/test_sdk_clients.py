"""The filesystem service driven by the official MCP Python SDK: /mcp in auto and legacy mode, and /sse."""

from __future__ import annotations

from typing import Any

from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.types import CallToolResult, TextContent

from tests.services.filesystem.conftest import SECRET, FsClient, Tree

TOOLS = {
    "read_file": (True, False),
    "write_file": (False, True),
    "list_directory": (True, False),
    "create_directory": (False, False),
    "get_file_info": (True, False),
    "search_files": (True, False),
    "move_file": (False, True),
    "list_allowed_roots": (True, False),
}


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def all_tools(client: Any) -> list[Any]:
    tools, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools


async def test_auto_mode_client_lists_every_tool_with_honest_annotations(fs: FsClient) -> None:
    async with Client(f"{fs.url}/mcp", mode="auto") as client:
        assert client.session.protocol_version == "2026-07-28"
        tools = {tool.name: tool for tool in await all_tools(client)}
    assert set(tools) == set(TOOLS)
    for name, (read_only, destructive) in TOOLS.items():
        assert tools[name].annotations.read_only_hint is read_only, name
        assert tools[name].annotations.destructive_hint is destructive, name
        assert tools[name].annotations.open_world_hint is False, name
        assert tools[name].description and tools[name].title
    read_schema = tools["read_file"].input_schema
    assert set(read_schema["properties"]) == {"path", "head", "tail", "start_line", "end_line"}
    assert read_schema["required"] == ["path"]
    assert set(tools["move_file"].input_schema["properties"]) == {"source", "destination", "overwrite"}
    assert tools["write_file"].output_schema["required"] == ["path", "bytes_written", "created"]


async def test_auto_mode_client_writes_reads_and_is_refused_outside(fs: FsClient, tree: Tree) -> None:
    async with Client(f"{fs.url}/mcp", mode="auto") as client:
        written = await client.call_tool(
            "write_file", {"path": "docs/sdk.md", "content": "# hi\n", "create_parents": True}
        )
        read = await client.call_tool("read_file", {"path": "docs/sdk.md"})
        refused = await client.call_tool("read_file", {"path": "../../outside/secret.txt"})
        unknown = await client.call_tool("read_file", {"path": "x", "encoding": "latin-1"})
    assert written.is_error is False and written.structured_content["created"] is True
    assert text_of(read) == "# hi\n" and read.structured_content["total_lines"] == 1
    assert refused.is_error and "'..' leads outside the root" in text_of(refused)
    assert SECRET not in text_of(refused)
    assert unknown.is_error and "encoding: unknown argument" in text_of(unknown)
    assert (tree.rw / "docs" / "sdk.md").read_text() == "# hi\n"


async def test_legacy_mode_client_lists_directories_and_searches(fs: FsClient, tree: Tree) -> None:
    async with Client(f"{fs.url}/mcp", mode="legacy") as client:
        assert client.session.protocol_version == "2025-11-25"
        listing = await client.call_tool("list_directory", {"path": ".", "depth": 2})
        found = await client.call_tool("search_files", {"pattern": "**/*.txt"})
        roots = await client.call_tool("list_allowed_roots", {})
    names = [entry["name"] for entry in listing.structured_content["entries"]]
    assert names == ["notes.txt", "sub", "sub/inner.txt"]
    assert "[file] notes.txt" in text_of(listing)
    assert [match["path"] for match in found.structured_content["matches"]] == [
        str(tree.rw / "notes.txt"),
        str(tree.rw / "sub" / "inner.txt"),
    ]
    assert roots.structured_content["roots"][1] == {"path": str(tree.ro), "mode": "ro", "available": True}


async def test_sse_client_moves_a_file_and_is_refused_in_the_read_only_root(fs: FsClient, tree: Tree) -> None:
    async with sse_client(f"{fs.url}/sse") as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        moved = await session.call_tool("move_file", {"source": "notes.txt", "destination": "sub/notes.txt"})
        info = await session.call_tool("get_file_info", {"path": "sub/notes.txt"})
        refused = await session.call_tool("write_file", {"path": f"{tree.ro}/readme.txt", "content": "x"})
    assert initialized.server_info.name == "filesystem"
    assert moved.structured_content["destination"] == str(tree.rw / "sub" / "notes.txt")
    assert info.structured_content["type"] == "file" and info.structured_content["size_bytes"] == 21
    assert refused.is_error and f"the root {tree.ro} is read-only" in text_of(refused)
    assert (tree.ro / "readme.txt").read_text() == "read me\n"
