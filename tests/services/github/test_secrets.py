"""The GitHub token never appears in a response body or a log line, whatever the call does.

GitHub cannot be reached from here: a local stand-in (harness/fake_github.py) answers in
GitHub's documented shapes, including its error bodies.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from harness.fake_github import FakeGitHub
from libmcp import SettingsError, build_server
from services.github.service import service
from services.github.settings import GithubSettings
from tests.services.github.support import TOKEN, call, get, rpc
from tests.support.servers import ServiceProcess

CALLS = [
    ("search_repositories", {"query": "mcp"}),
    ("search_repositories", {"query": "user:ghost-nobody"}),
    ("get_repository", {"repo": "octo-org/hello-world"}),
    ("get_repository", {"repo": "octo-org/missing"}),
    ("get_repository", {"repo": "octo-org/primary-limit"}),
    ("get_repository", {"repo": "octo-org/secondary-limit"}),
    ("get_repository", {"repo": "octo-org/forbidden"}),
    ("get_repository", {"repo": "octo-org/teapot"}),
    ("list_issues", {"repo": "octo-org/hello-world", "labels": ["bug"]}),
    ("get_issue", {"repo": "octo-org/hello-world", "number": 1}),
    ("get_file_contents", {"repo": "octo-org/hello-world", "path": "README.md"}),
    ("get_file_contents", {"repo": "octo-org/hello-world", "path": "README.md", "ref": "nope"}),
    ("create_issue", {"repo": "octo-org/hello-world", "title": "t", "assignees": ["ghost-x"]}),
    ("create_issue", {"repo": "octo-org/hello-world", "title": "t"}),
    ("get_repository", {"repo": "not a repo"}),
]


async def test_the_token_is_in_no_response_and_no_log_line(serve_github, fake: FakeGitHub, caplog):
    caplog.set_level(logging.DEBUG)
    url, _ = serve_github(github_allow_write=True)
    bodies = [str(await rpc(url, "tools/list"))]
    for tool, arguments in CALLS:
        bodies.append(str(await call(url, tool, arguments)))
    async with httpx.AsyncClient() as client:
        for path in ("/health", "/metrics", "/.well-known/mcp", "/openapi.json"):
            bodies.append((await client.get(f"{url}{path}")).text)

    assert all(request.headers.get("authorization") == f"token {TOKEN}" for request in fake.received)
    assert any(record.name.startswith("github") for record in caplog.records), (
        "PyGithub debug logging was off"
    )
    assert not [body for body in bodies if TOKEN in body]
    assert TOKEN not in caplog.text
    assert not [record for record in caplog.records if TOKEN in record.getMessage()]


async def test_a_rejected_token_is_not_echoed_either(serve_github, fake, caplog):
    caplog.set_level(logging.DEBUG)
    rejected = "rejected-token-5e6f7a8b"
    url, _ = serve_github(github_token=rejected)
    result = await call(url, "get_repository", {"repo": "octo-org/hello-world"})
    health = (await get(f"{url}/health")).text
    assert rejected not in str(result) and rejected not in health
    assert rejected not in caplog.text


async def test_the_served_process_logs_json_lines_without_the_token(github_stand_in, fake):
    _, api_url = github_stand_in
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": api_url, "MCP_LOG_LEVEL": "DEBUG"}
    with ServiceProcess("github", env=env) as process:
        found = await call(process.url, "get_repository", {"repo": "octo-org/hello-world"})
        missing = await call(process.url, "get_issue", {"repo": "octo-org/hello-world", "number": 404})
        stopped = process.stop()
    assert stopped is not None
    code, output = stopped
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]

    assert code == 0
    assert found["isError"] is False and missing["isError"] is True
    requests_logged = [
        line["message"]
        for line in lines
        if line["logger"] == "github.Requester" and line["message"].startswith("GET ")
    ]
    assert any("/repos/octo-org/hello-world " in message for message in requests_logged)
    assert all("'Authorization': 'token (oauth token removed)'" in message for message in requests_logged)
    assert TOKEN not in output


def test_settings_hide_the_token_in_repr_and_in_startup_errors():
    settings = GithubSettings.model_validate({"github_token": TOKEN})
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    with pytest.raises(SettingsError) as failure:
        build_server(
            service,
            environ={"GITHUB_TOKEN": TOKEN, "GITHUB_MAX_CONCURRENCY": "0", "MCP_ENV_FILE": "/dev/null"},
        )
    assert "GITHUB_MAX_CONCURRENCY" in str(failure.value)
    assert TOKEN not in str(failure.value)
