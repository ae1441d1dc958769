"""The read tools against a local stand-in for the GitHub REST API (GitHub itself cannot be reached here).

The stand-in (harness/fake_github.py) answers in GitHub's documented payload shapes, with
rate-limit and pagination ``Link`` headers; each test asserts what the stand-in received as well as what
the tool returned.
"""

from __future__ import annotations

from harness.fake_github import APP_PY, BIG_TEXT, README, README_AT_TAG, FakeGitHub
from tests.services.github.support import TOKEN, call, error_text


async def test_search_repositories_sends_the_query_and_pages_through_results(github, fake: FakeGitHub):
    url, _ = github
    first = await call(
        url, "search_repositories", {"query": "language:python mcp", "sort": "stars", "per_page": 10}
    )
    last = await call(url, "search_repositories", {"query": "language:python mcp", "page": 3, "per_page": 10})

    assert [request.query for request in fake.received] == [
        {"q": "language:python mcp", "sort": "stars", "order": "desc", "page": "1", "per_page": "10"},
        {"q": "language:python mcp", "page": "3", "per_page": "10"},
    ]
    assert fake.received[0].path == "/search/repositories"
    assert fake.received[0].headers["authorization"] == f"token {TOKEN}"
    page = first["structuredContent"]
    assert first["isError"] is False
    assert page["total_count"] == 25 and page["incomplete_results"] is False
    assert page["has_next_page"] is True
    assert [repo["full_name"] for repo in page["repositories"]][:2] == [
        "octo-org/project-01",
        "octo-org/project-02",
    ]
    assert page["repositories"][0] == {
        "full_name": "octo-org/project-01",
        "description": None,
        "html_url": "https://github.example/octo-org/project-01",
        "stars": 1000,
        "forks": 0,
        "language": None,
        "topics": [],
        "archived": False,
        "updated_at": "2026-11-21T09:14:00Z",
    }
    assert last["structuredContent"]["has_next_page"] is False
    assert len(last["structuredContent"]["repositories"]) == 5


async def test_search_beyond_the_first_thousand_results_is_refused_before_calling_github(github, fake):
    url, _ = github
    result = await call(url, "search_repositories", {"query": "x", "page": 11, "per_page": 100})
    assert "only the first 1000 results" in error_text(result)
    assert fake.received == []


async def test_get_repository_reports_metadata_languages_and_latest_release(github, fake):
    url, _ = github
    result = await call(url, "get_repository", {"repo": "octo-org/hello-world"})

    assert fake.paths() == [
        "/repos/octo-org/hello-world",
        "/repos/octo-org/hello-world/languages",
        "/repos/octo-org/hello-world/releases/latest",
    ]
    assert result["isError"] is False
    repo = result["structuredContent"]
    assert repo["full_name"] == "octo-org/hello-world"
    assert repo["description"] == "This your first repo!"
    assert repo["topics"] == ["octocat", "atom", "electron", "api"]
    assert repo["license"] == {"spdx_id": "MIT", "name": "MIT License"}
    assert repo["default_branch"] == "main"
    assert (repo["stars"], repo["forks"], repo["open_issues"], repo["watchers"]) == (80, 9, 6, 42)
    assert list(repo["languages"].items()) == [("Python", 53100), ("Shell", 1200), ("Dockerfile", 400)]
    assert repo["latest_release"] == {
        "tag_name": "v1.2.0",
        "name": "v1.2.0 (Lemon)",
        "published_at": "2026-11-02T10:00:00Z",
        "html_url": "https://github.example/octo-org/hello-world/releases/v1.2.0",
    }
    assert (repo["pushed_at"], repo["updated_at"]) == ("2026-11-20T22:06:43Z", "2026-11-21T09:14:00Z")
    assert repo["rate_limit_warning"] is None


async def test_a_repository_without_release_or_license_reports_none(github, fake):
    url, _ = github
    result = await call(url, "get_repository", {"repo": "octo-org/empty-notes"})
    repo = result["structuredContent"]
    assert result["isError"] is False
    assert repo["latest_release"] is None
    assert repo["license"] is None
    assert repo["topics"] == [] and repo["languages"] == {}
    assert repo["homepage"] is None
    assert fake.paths()[-1] == "/repos/octo-org/empty-notes/releases/latest"


async def test_list_issues_follows_link_header_pagination_and_marks_pull_requests(github, fake):
    url, _ = github
    first = await call(url, "list_issues", {"repo": "octo-org/hello-world", "per_page": 4})
    second = await call(url, "list_issues", {"repo": "octo-org/hello-world", "per_page": 4, "page": 2})

    assert [request.query for request in fake.received] == [
        {"state": "open", "page": "1", "per_page": "4"},
        {"state": "open", "page": "2", "per_page": "4"},
    ]
    page1, page2 = first["structuredContent"], second["structuredContent"]
    assert [issue["number"] for issue in page1["issues"]] == [7, 6, 5, 4]
    assert (page1["has_next_page"], page1["last_page"]) == (True, 2)
    assert [issue["number"] for issue in page2["issues"]] == [2, 1]
    assert (page2["has_next_page"], page2["last_page"]) == (False, None)
    assert page1["issues"][0]["is_pull_request"] is True
    assert not any(issue["is_pull_request"] for issue in page1["issues"][1:] + page2["issues"])
    assert page2["issues"][1] == {
        "number": 1,
        "title": "Issue number 1",
        "state": "open",
        "is_pull_request": False,
        "author": "octocat",
        "labels": ["bug"],
        "assignees": ["hubot"],
        "comments": 3,
        "created_at": "2026-10-01T10:00:00Z",
        "updated_at": "2026-11-01T10:00:00Z",
        "closed_at": None,
        "html_url": "https://github.example/octo-org/hello-world/issues/1",
    }


async def test_list_issues_passes_state_labels_and_since_filters(github, fake):
    url, _ = github
    result = await call(
        url,
        "list_issues",
        {
            "repo": "octo-org/hello-world",
            "state": "all",
            "labels": ["docs"],
            "since": "2026-11-03T00:00:00+00:00",
        },
    )
    assert fake.received[0].query == {
        "state": "all",
        "labels": "docs",
        "since": "2026-11-03T00:00:00Z",
        "page": "1",
        "per_page": "30",
    }
    issues = result["structuredContent"]["issues"]
    assert [(issue["number"], issue["state"]) for issue in issues] == [(5, "open"), (3, "closed")]


async def test_get_issue_returns_body_and_comments(github, fake):
    url, _ = github
    result = await call(url, "get_issue", {"repo": "octo-org/hello-world", "number": 1})
    assert fake.paths() == [
        "/repos/octo-org/hello-world/issues/1",
        "/repos/octo-org/hello-world/issues/1/comments",
    ]
    issue = result["structuredContent"]
    assert issue["issue"]["title"] == "Issue number 1"
    assert issue["body"] == "Body of issue 1."
    assert [(comment["author"], comment["body"]) for comment in issue["comments"]] == [
        ("hubot", "Comment 1 on #1"),
        ("octocat", "Comment 2 on #1"),
        ("hubot", "Comment 3 on #1"),
    ]
    assert issue["comments_not_shown"] == 0


async def test_get_issue_bounds_the_comments_it_returns(github, fake):
    url, _ = github
    result = await call(url, "get_issue", {"repo": "octo-org/hello-world", "number": 2})
    issue = result["structuredContent"]
    assert fake.received[-1].query == {"per_page": "50"}
    assert len(issue["comments"]) == 50
    assert issue["comments"][-1]["body"] == "Comment 50 on #2"
    assert issue["comments_not_shown"] == 10


async def test_get_issue_without_comments_makes_one_request_and_reads_closed_state(github, fake):
    url, _ = github
    result = await call(url, "get_issue", {"repo": "octo-org/hello-world", "number": 3})
    assert fake.paths() == ["/repos/octo-org/hello-world/issues/3"]
    issue = result["structuredContent"]
    assert (issue["issue"]["state"], issue["state_reason"]) == ("closed", "completed")
    assert issue["comments"] == []


async def test_get_file_contents_decodes_a_text_file(github, fake):
    url, _ = github
    result = await call(url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "README.md"})
    assert fake.received[0].path == "/repos/octo-org/hello-world/contents/README.md"
    assert fake.received[0].query == {}
    file = result["structuredContent"]
    assert (file["type"], file["content"], file["truncated"], file["binary"]) == (
        "file",
        README,
        False,
        False,
    )
    assert file["size"] == len(README.encode())


async def test_get_file_contents_reads_at_a_ref(github, fake):
    url, _ = github
    result = await call(
        url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "/README.md", "ref": "v1.2.0"}
    )
    assert fake.received[0].query == {"ref": "v1.2.0"}
    assert result["structuredContent"]["content"] == README_AT_TAG
    assert result["structuredContent"]["ref"] == "v1.2.0"


async def test_get_file_contents_lists_directories(github, fake):
    url, _ = github
    root = await call(url, "get_file_contents", {"repo": "octo-org/hello-world"})
    src = await call(url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "src"})
    assert fake.paths() == [
        "/repos/octo-org/hello-world/contents/",
        "/repos/octo-org/hello-world/contents/src",
    ]
    assert root["structuredContent"]["type"] == "dir"
    assert [(entry["name"], entry["type"]) for entry in root["structuredContent"]["entries"]] == [
        ("README.md", "file"),
        ("docs", "dir"),
        ("logo.png", "file"),
        ("src", "dir"),
        ("huge.bin", "file"),
    ]
    assert src["structuredContent"]["entries"] == [
        {"name": "app.py", "path": "src/app.py", "type": "file", "size": len(APP_PY)},
        {"name": "lib", "path": "src/lib", "type": "dir", "size": 0},
    ]
    assert root["structuredContent"]["content"] is None


async def test_get_file_contents_describes_binary_files_instead_of_returning_them(github, fake):
    url, _ = github
    result = await call(url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "logo.png"})
    file = result["structuredContent"]
    assert (file["binary"], file["content"]) == (True, None)
    assert "Binary file" in file["note"]
    assert file["download_url"] == "https://raw.github.example/octo-org/hello-world/main/logo.png"


async def test_get_file_contents_caps_text_at_the_configured_size(serve_github, fake):
    url, _ = serve_github(github_max_file_bytes=100)
    result = await call(url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "docs/big.txt"})
    file = result["structuredContent"]
    assert file["truncated"] is True
    assert file["content"] == BIG_TEXT[:100]
    assert file["size"] == len(BIG_TEXT)
    assert "first 100 of" in file["note"]


async def test_get_file_contents_explains_files_too_large_for_the_contents_api(github, fake):
    url, _ = github
    result = await call(url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "huge.bin"})
    file = result["structuredContent"]
    assert file["content"] is None
    assert file["size"] == 5_242_880
    assert "download_url" in file["note"]


async def test_repo_names_are_validated_before_anything_is_sent(github, fake):
    url, _ = github
    results = [
        await call(url, "get_repository", {"repo": "hello-world"}),
        await call(url, "list_issues", {"repo": "octo-org/hello/world"}),
        await call(url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "../../etc/passwd"}),
    ]
    texts = [error_text(result) for result in results]
    assert "repo must be 'owner/name' such as 'octocat/Hello-World', got 'hello-world'" in texts[0]
    assert "repo must be 'owner/name'" in texts[1]
    assert "path must be a plain path inside the repository" in texts[2]
    assert fake.received == []
