"""The official MCP SDK as the client of the github service, over Streamable HTTP and legacy SSE.

GitHub cannot be reached from here: a local stand-in (harness/fake_github.py) answers in
GitHub's documented shapes.
"""

from __future__ import annotations

from mcp import Client, ClientSession
from mcp.client.sse import sse_client

from harness.fake_github import FakeGitHub
from services.github.settings import READ_TOOLS


async def test_sdk_client_lists_and_calls_tools_in_auto_mode(github, fake: FakeGitHub):
    url, _ = github
    async with Client(f"{url}/mcp", mode="auto") as client:
        tools = await client.list_tools()
        result = await client.call_tool("get_repository", {"repo": "octo-org/hello-world"})
        missing = await client.call_tool("get_repository", {"repo": "octo-org/missing"})

    assert [tool.name for tool in tools.tools] == list(READ_TOOLS)
    schema = {tool.name: tool for tool in tools.tools}["get_repository"].input_schema
    assert (
        schema["properties"]["repo"]["description"]
        == "Repository as 'owner/name', e.g. 'octocat/Hello-World'."
    )
    assert result.is_error is False
    assert result.structured_content["license"] == {"spdx_id": "MIT", "name": "MIT License"}
    assert missing.is_error is True
    assert missing.content[0].text.startswith("Not found on GitHub: repository octo-org/missing.")
    assert "/repos/octo-org/hello-world" in fake.paths()


async def test_sdk_client_over_sse_searches_repositories(serve_github, fake):
    url, _ = serve_github(github_allow_write=True)
    async with sse_client(f"{url}/sse") as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        found = await session.call_tool("search_repositories", {"query": "topic:mcp", "per_page": 3})
        created = await session.call_tool(
            "create_issue", {"repo": "octo-org/hello-world", "title": "From SSE"}
        )

    assert initialized.server_info.name == "github"
    assert found.is_error is False
    assert [repo["full_name"] for repo in found.structured_content["repositories"]] == [
        "octo-org/project-01",
        "octo-org/project-02",
        "octo-org/project-03",
    ]
    assert fake.received[0].query["q"] == "topic:mcp"
    assert created.structured_content["issue"]["title"] == "From SSE"
    assert fake.received[-1].body == {"title": "From SSE"}
