"""Which tools a deployment lists, and create_issue against a local stand-in for the GitHub REST API.

GitHub cannot be reached from here; harness/fake_github.py answers in GitHub's documented
shapes and records what it receives, so the issue GitHub would have been asked to create is asserted.
"""

from __future__ import annotations

from harness.fake_github import FakeGitHub
from services.github.service import service
from services.github.settings import READ_TOOLS, TOOL_NAMES
from tests.services.github.support import TOKEN, call, error_text, rpc


async def listed(url: str) -> list[str]:
    body = await rpc(url, "tools/list")
    return [tool["name"] for tool in body["result"]["tools"]]


def test_the_settings_know_every_tool_the_service_defines():
    assert set(TOOL_NAMES) == set(service.tools)


async def test_write_tools_are_hidden_and_refused_by_default(github, fake: FakeGitHub):
    url, _ = github
    refused = await rpc(
        url,
        "tools/call",
        {"name": "create_issue", "arguments": {"repo": "octo-org/hello-world", "title": "x"}},
    )
    assert await listed(url) == list(READ_TOOLS)
    assert refused["error"]["code"] == -32602
    assert refused["error"]["message"] == "Unknown tool: create_issue"
    assert fake.received == []


async def test_allowing_writes_lists_create_issue_with_honest_annotations(serve_github, fake):
    url, _ = serve_github(github_allow_write=True)
    body = await rpc(url, "tools/list")
    tools = {tool["name"]: tool for tool in body["result"]["tools"]}
    assert set(tools) == set(TOOL_NAMES)
    assert tools["create_issue"]["annotations"]["readOnlyHint"] is False
    assert tools["create_issue"]["annotations"]["idempotentHint"] is False
    assert tools["get_repository"]["annotations"]["readOnlyHint"] is True
    assert tools["get_repository"]["annotations"]["openWorldHint"] is True


async def test_create_issue_posts_exactly_the_issue_asked_for(serve_github, fake):
    url, _ = serve_github(github_allow_write=True)
    result = await call(
        url,
        "create_issue",
        {
            "repo": "octo-org/hello-world",
            "title": "Crash when the config is empty",
            "body": "Steps:\n1. empty config\n2. start",
            "labels": ["bug", "triage"],
            "assignees": ["hubot"],
        },
    )

    assert [(request.method, request.path) for request in fake.received] == [
        ("POST", "/repos/octo-org/hello-world/issues")
    ]
    sent = fake.received[0]
    assert sent.body == {
        "title": "Crash when the config is empty",
        "body": "Steps:\n1. empty config\n2. start",
        "labels": ["bug", "triage"],
        "assignees": ["hubot"],
    }
    assert sent.headers["authorization"] == f"token {TOKEN}"
    assert sent.headers["content-type"].startswith("application/json")
    assert result["isError"] is False
    created = result["structuredContent"]["issue"]
    assert created["number"] == 8
    assert created["html_url"] == "https://github.example/octo-org/hello-world/issues/8"
    assert (created["title"], created["labels"], created["assignees"]) == (
        "Crash when the config is empty",
        ["bug", "triage"],
        ["hubot"],
    )


async def test_create_issue_sends_only_the_title_when_nothing_else_is_given(serve_github, fake):
    url, _ = serve_github(github_allow_write=True)
    result = await call(url, "create_issue", {"repo": "octo-org/hello-world", "title": "Just a title"})
    assert fake.received[0].body == {"title": "Just a title"}
    assert result["structuredContent"]["issue"]["number"] == 8


async def test_github_tools_narrows_the_listed_tools(serve_github, fake):
    url, _ = serve_github(github_tools=["get_repository", "get_file_contents"])
    refused = await rpc(url, "tools/call", {"name": "search_repositories", "arguments": {"query": "x"}})
    allowed = await call(url, "get_repository", {"repo": "octo-org/hello-world"})
    assert await listed(url) == ["get_repository", "get_file_contents"]
    assert refused["error"]["code"] == -32602
    assert allowed["isError"] is False
    assert "/search/repositories" not in fake.paths()


async def test_github_tools_may_list_create_issue_when_writes_are_allowed(serve_github, fake):
    url, _ = serve_github(github_allow_write=True, github_tools=["create_issue"])
    assert await listed(url) == ["create_issue"]


async def test_an_invalid_create_issue_call_is_refused_with_the_fields_named(serve_github, fake):
    url, _ = serve_github(github_allow_write=True)
    result = await call(url, "create_issue", {"repo": "octo-org/hello-world", "title": "", "colour": "red"})
    text = error_text(result)
    assert "title: String should have at least 1 character" in text
    assert "colour: unknown argument" in text
    assert fake.received == []
