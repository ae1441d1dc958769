"""GitHub's rate-limit headers become Prometheus gauges, and a low limit is reported in results.

GitHub cannot be reached from here: a local stand-in (harness/fake_github.py) sends the
documented ``x-ratelimit-limit/remaining/reset/used/resource`` headers with each answer.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from harness.fake_github import FakeGitHub
from tests.services.github.support import call, get


async def gauges(url: str) -> dict[tuple[str, str], float]:
    response = await get(f"{url}/metrics")
    assert response.status_code == 200
    values = {}
    for family in text_string_to_metric_families(response.text):
        if family.name.startswith("github_rate_limit"):
            for sample in family.samples:
                values[(sample.name, sample.labels["resource"])] = sample.value
    return values


async def test_rate_limit_gauges_follow_the_last_answer_per_resource(github, fake: FakeGitHub):
    url, _ = github
    assert (await gauges(url)) == {}
    fake.remaining["core"] = 4321
    await call(url, "get_repository", {"repo": "octo-org/hello-world"})
    await call(url, "search_repositories", {"query": "mcp"})

    assert (await gauges(url)) == {
        ("github_rate_limit_remaining", "core"): 4321,
        ("github_rate_limit_limit", "core"): 5000,
        ("github_rate_limit_reset_timestamp_seconds", "core"): fake.reset_at,
        ("github_rate_limit_remaining", "search"): 29,
        ("github_rate_limit_limit", "search"): 30,
        ("github_rate_limit_reset_timestamp_seconds", "search"): fake.reset_at,
    }


async def test_error_answers_update_the_gauges_too(github, fake):
    url, _ = github
    await call(url, "get_repository", {"repo": "octo-org/primary-limit"})
    assert (await gauges(url))[("github_rate_limit_remaining", "core")] == 0


async def test_results_warn_when_less_than_a_tenth_of_the_limit_is_left(github, fake):
    url, _ = github
    fake.remaining["core"] = 499
    low = await call(url, "list_issues", {"repo": "octo-org/hello-world"})
    fake.remaining["core"] = 500
    enough = await call(url, "list_issues", {"repo": "octo-org/hello-world"})

    warning = low["structuredContent"]["rate_limit_warning"]
    assert warning.startswith(
        "GitHub API rate limit is low: 499 of 5000 core requests left; the limit resets at "
    )
    assert warning in low["content"][0]["text"]
    assert enough["structuredContent"]["rate_limit_warning"] is None


async def test_health_reports_configuration_and_last_known_limits_without_calling_github(github, fake):
    url, _ = github
    first = (await get(f"{url}/health")).json()["checks"]["github"]
    await call(url, "search_repositories", {"query": "mcp"})
    requests_before = len(fake.received)
    second = (await get(f"{url}/health")).json()["checks"]["github"]

    assert first["status"] == "ok"
    assert first["detail"].startswith("token configured, API http://127.0.0.1:")
    assert second["detail"].endswith("search: 29/30 left")
    assert len(fake.received) == requests_before


async def test_health_says_anonymous_without_a_token(serve_github, fake):
    url, _ = serve_github(github_token="")
    check = (await get(f"{url}/health")).json()["checks"]["github"]
    assert check["status"] == "ok"
    assert check["detail"].startswith("anonymous (60 requests an hour; set GITHUB_TOKEN)")
    assert fake.received == []
