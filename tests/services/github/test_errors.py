"""GitHub's failures come back as isError results a model can act on.

GitHub cannot be reached from here: a local stand-in (harness/fake_github.py) answers with
GitHub's documented error bodies (``message``, ``documentation_url``, ``errors``) and rate-limit headers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from harness.fake_github import SEARCH_422_MESSAGE, FakeGitHub
from tests.services.github.support import call, error_text, get
from tests.support.servers import free_port


def reset_text(fake: FakeGitHub) -> str:
    return datetime.fromtimestamp(fake.reset_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_bad_credentials_say_the_token_was_rejected_and_health_turns_down(serve_github, fake):
    url, _ = serve_github(github_token="revoked-token-0000")
    before = (await get(f"{url}/health")).json()
    result = await call(url, "get_repository", {"repo": "octo-org/hello-world"})
    after = await get(f"{url}/health")

    assert fake.received[0].headers["authorization"] == "token revoked-token-0000"
    assert (
        error_text(result) == "GitHub rejected GITHUB_TOKEN (401): the token is invalid, expired or revoked."
    )
    assert before["checks"]["github"]["status"] == "ok"
    assert after.status_code == 503
    assert after.json()["checks"]["github"] == {
        "status": "down",
        "detail": "GitHub rejected GITHUB_TOKEN (401) on the last call",
    }


async def test_a_successful_call_clears_the_rejected_credentials_state(github, fake):
    url, server = github
    server.state.github.credentials_rejected = True
    await call(url, "get_repository", {"repo": "octo-org/empty-notes"})
    assert (await get(f"{url}/health")).status_code == 200


async def test_not_found_names_what_was_missing(github, fake):
    url, _ = github
    repo = await call(url, "get_repository", {"repo": "octo-org/no-such-repo"})
    issue = await call(url, "get_issue", {"repo": "octo-org/hello-world", "number": 999})
    file = await call(url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "nope.txt"})
    ref = await call(
        url, "get_file_contents", {"repo": "octo-org/hello-world", "path": "README.md", "ref": "nope"}
    )

    assert error_text(repo) == (
        "Not found on GitHub: repository octo-org/no-such-repo. It does not exist, or the token cannot see "
        "it (GitHub answers 404 for private resources it hides)."
    )
    assert error_text(issue).startswith("Not found on GitHub: issue #999 in octo-org/hello-world.")
    assert error_text(file).startswith("Not found on GitHub: path nope.txt in octo-org/hello-world.")
    assert error_text(ref).startswith("Not found on GitHub: path README.md at nope in octo-org/hello-world.")


async def test_anonymous_not_found_hints_at_a_missing_token(serve_github, fake):
    url, _ = serve_github(github_token="")
    result = await call(url, "get_repository", {"repo": "octo-org/private-thing"})
    assert "authorization" not in fake.received[0].headers
    assert "no GITHUB_TOKEN is set" in error_text(result)


async def test_validation_failures_include_githubs_error_details(serve_github, fake):
    url, _ = serve_github(github_allow_write=True)
    search = await call(url, "search_repositories", {"query": "user:ghost-nobody stars:>1"})
    issue = await call(
        url, "create_issue", {"repo": "octo-org/hello-world", "title": "t", "assignees": ["ghost-a"]}
    )

    assert error_text(search) == (
        f"GitHub rejected the request as invalid (422 Validation Failed): Search.q: {SEARCH_422_MESSAGE} "
        "(see https://docs.github.com/rest/search/search#search-repositories)."
    )
    assert error_text(issue) == (
        "GitHub rejected the request as invalid (422 Validation Failed): Issue.assignees: invalid "
        "(value 'ghost-a') (see https://docs.github.com/rest/issues/issues#create-an-issue)."
    )


async def test_primary_rate_limit_says_when_it_resets(github, fake):
    url, _ = github
    result = await call(url, "get_repository", {"repo": "octo-org/primary-limit"})
    text = error_text(result)
    assert text.startswith(
        "GitHub API rate limit exceeded (core: 0 of 5000 requests left); the limit resets at "
    )
    assert reset_text(fake) in text
    assert "(in 30 min)" in text or "(in 29 min)" in text


async def test_primary_rate_limit_of_anonymous_clients_suggests_a_token(serve_github, fake):
    url, _ = serve_github(github_token="")
    fake.remaining["search"] = 0
    result = await call(url, "search_repositories", {"query": "mcp"})
    text = error_text(result)
    assert text.startswith("GitHub API rate limit exceeded (search: 0 of 30 requests left)")
    assert "set GITHUB_TOKEN for more" in text


async def test_secondary_rate_limit_says_how_long_to_wait(github, fake):
    url, _ = github
    result = await call(url, "list_issues", {"repo": "octo-org/secondary-limit"})
    text = error_text(result)
    assert text.startswith("GitHub secondary rate limit hit (You have exceeded a secondary rate limit.")
    assert text.endswith(": retry after 60 s.")
    assert len(fake.received) == 1, "a rate-limited call must not be retried inside the tool call"


async def test_a_429_without_retry_after_asks_to_wait_a_minute(github, fake):
    url, _ = github
    result = await call(url, "get_issue", {"repo": "octo-org/too-many", "number": 1})
    assert error_text(result) == (
        "GitHub secondary rate limit hit (You have exceeded a secondary rate limit): "
        "wait at least a minute before retrying."
    )


async def test_errors_also_mention_a_nearly_used_up_rate_limit(github, fake):
    url, _ = github
    fake.remaining["core"] = 12
    result = await call(url, "get_repository", {"repo": "octo-org/missing"})
    text = error_text(result)
    assert text.startswith("Not found on GitHub: repository octo-org/missing.")
    assert " GitHub API rate limit is low: 12 of 5000 core requests left; the limit resets at " in text


async def test_forbidden_without_rate_limit_reads_as_missing_permission(github, fake):
    url, _ = github
    result = await call(url, "get_repository", {"repo": "octo-org/forbidden"})
    assert error_text(result) == (
        "GitHub refused repository octo-org/forbidden (403 Resource not accessible by integration): "
        "the token may lack a needed permission (see https://docs.github.com/rest)."
    )


async def test_server_errors_are_reported_with_githubs_message_and_not_retried(github, fake):
    url, _ = github
    result = await call(url, "get_repository", {"repo": "octo-org/teapot"})
    assert error_text(result) == (
        "GitHub answered 502 for repository octo-org/teapot: Server Error (see https://docs.github.com/rest)."
    )
    assert len(fake.received) == 1


async def test_an_unreachable_api_is_a_clear_error(serve_github, fake):
    closed = f"http://127.0.0.1:{free_port()}"
    url, _ = serve_github(github_api_url=closed)
    result = await call(url, "get_repository", {"repo": "octo-org/hello-world"})
    assert error_text(result) == (
        f"Could not reach the GitHub API at {closed} (ConnectionError); check GITHUB_API_URL."
    )
