"""search_logs: LogQL through Loki's query_range API.

Loki cannot run here, so these tests serve a stand-in (tests/services/monitoring/standins.py) that
answers ``GET /loki/api/v1/query_range`` with Loki's documented JSON (resultType streams, nanosecond
string timestamps, newest first for direction=backward) and its 400 parse-error text, and records the
requests so the exact LogQL, limits and time range sent can be asserted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from mcp import Client

from services.monitoring.service import service
from tests.services.monitoring.support import make_settings, nowhere, rpc_call
from tests.support.servers import free_port


def nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def entries(count: int, prefix: str, start: datetime, every: timedelta) -> list[tuple[int, str]]:
    return [(nanos(start + every * index), f"{prefix} {index}") for index in range(count)]


async def test_lines_of_all_streams_come_merged_with_labels_newest_last(loki, serve_service, tmp_path):
    standin, loki_url = loki
    start = datetime.now(UTC) - timedelta(minutes=30)
    standin.streams = [
        ({"app": "web", "level": "error"}, entries(3, "web", start, timedelta(seconds=2))),
        (
            {"app": "api", "level": "error"},
            entries(3, "api", start + timedelta(seconds=1), timedelta(seconds=2)),
        ),
    ]
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), LOKI_URL=loki_url))

    async with Client(f"{url}/mcp", mode="auto") as client:
        result = await client.call_tool("search_logs", {"query": '{level="error"}'})

    assert result.is_error is False
    found = result.structured_content
    assert [entry["line"] for entry in found["entries"]] == [
        "web 0",
        "api 0",
        "web 1",
        "api 1",
        "web 2",
        "api 2",
    ]
    assert found["entries"][1]["labels"] == {"app": "api", "level": "error"}
    assert found["entries"][0]["timestamp"].endswith("000Z") and len(found["entries"][0]["timestamp"]) == 30
    assert found["truncated"] is False
    assert result.content[0].text.splitlines()[-1].endswith('{app="api",level="error"} api 2')


def test_the_logql_reaches_loki_unaltered_with_the_range_limit_and_direction(loki, serve_service, tmp_path):
    standin, loki_url = loki
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), LOKI_URL=loki_url))
    query = '{container="mcp-fetch", namespace=~"mcp|apps"} |= "a&b=c #x ü" != `\\d+%` | json | status >= 500'

    result = rpc_call(
        url,
        "search_logs",
        {"query": query, "start": "2026-11-26T09:00:00Z", "end": "2026-11-26T10:00:00.5Z", "limit": 42},
    )

    assert result["isError"] is False
    sent = standin.requests[-1]
    assert sent.query == {
        "query": query,
        "start": "1795683600000000000",
        "end": "1795687200500000000",
        "limit": "42",
        "direction": "backward",
    }
    assert "&b=c" not in sent.raw_path and "#" not in sent.raw_path


def test_limit_is_capped_and_truncation_reported_newest_kept(loki, serve_service, tmp_path):
    standin, loki_url = loki
    start = datetime.now(UTC) - timedelta(minutes=20)
    standin.streams = [({"app": "web"}, entries(50, "line", start, timedelta(seconds=1)))]
    url, _ = serve_service(
        service, make_settings(nowhere(tmp_path), LOKI_URL=loki_url, MONITORING_MAX_LOG_LINES="10")
    )

    result = rpc_call(url, "search_logs", {"query": '{app="web"}', "limit": 500})

    assert standin.requests[-1].query["limit"] == "10"
    found = result["structuredContent"]
    assert [entry["line"] for entry in found["entries"]] == [f"line {i}" for i in range(40, 50)]
    assert found["truncated"] is True


def test_the_byte_cap_drops_the_oldest_lines(loki, serve_service, tmp_path):
    standin, loki_url = loki
    start = datetime.now(UTC) - timedelta(minutes=20)
    # 100 bytes each: five fit in 500.
    lines = [(n, text + " " + "z" * 92) for n, text in entries(20, "line", start, timedelta(seconds=1))]
    standin.streams = [({"app": "web"}, lines)]
    url, _ = serve_service(
        service, make_settings(nowhere(tmp_path), LOKI_URL=loki_url, MONITORING_MAX_LOG_BYTES="500")
    )

    result = rpc_call(url, "search_logs", {"query": '{app="web"}', "limit": 100})

    found = result["structuredContent"]
    assert [entry["line"][:7] for entry in found["entries"]] == [
        "line 15",
        "line 16",
        "line 17",
        "line 18",
        "line 19",
    ]
    assert found["truncated"] is True


def test_an_answer_larger_than_the_response_cap_is_refused_naming_the_setting(loki, serve_service, tmp_path):
    standin, loki_url = loki
    start = datetime.now(UTC) - timedelta(minutes=20)
    standin.streams = [({"app": "web"}, entries(2000, "line", start, timedelta(milliseconds=100)))]
    url, _ = serve_service(
        service,
        make_settings(nowhere(tmp_path), LOKI_URL=loki_url, MONITORING_MAX_RESPONSE_BYTES="4096"),
    )

    result = rpc_call(url, "search_logs", {"query": '{app="web"}', "limit": 1000})

    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert f"Loki at {loki_url}'s answer is larger than 4096 bytes (MONITORING_MAX_RESPONSE_BYTES)" in text


def test_malformed_logql_returns_lokis_parse_error(loki, serve_service, tmp_path):
    _, loki_url = loki
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), LOKI_URL=loki_url))

    result = rpc_call(url, "search_logs", {"query": 'level="error"'})
    metric = rpc_call(url, "search_logs", {"query": 'rate({app="web"}[5m])'})

    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert text.startswith("Loki rejected the query: parse error at line 1, col 1: syntax error")
    assert 'Query was: level="error"' in text
    assert metric["isError"] is True and "this is a metric query" in metric["content"][0]["text"]


def test_bad_times_are_refused_before_loki_is_asked(loki, serve_service, tmp_path):
    standin, loki_url = loki
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), LOKI_URL=loki_url))

    garbage = rpc_call(url, "search_logs", {"query": '{a="b"}', "start": "yesterday-ish"})
    reversed_range = rpc_call(url, "search_logs", {"query": '{a="b"}', "start": "1h", "end": "2h"})

    assert (
        garbage["isError"] is True and "start: 'yesterday-ish' is not a time" in garbage["content"][0]["text"]
    )
    assert reversed_range["isError"] is True and "must be before end" in reversed_range["content"][0]["text"]
    assert standin.requests == []


def test_url_credentials_become_basic_auth_and_never_show(loki, serve_service, tmp_path):
    standin, loki_url = loki
    with_credentials = loki_url.replace("http://", "http://tenant:s3cret-pass@")
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), LOKI_URL=with_credentials))

    rpc_call(url, "search_logs", {"query": '{app="web"}'})
    health = httpx.get(f"{url}/health", timeout=10).json()
    failing = rpc_call(url, "search_logs", {"query": "nope"})

    assert standin.requests[0].headers["authorization"] == "Basic dGVuYW50OnMzY3JldC1wYXNz"
    assert health["checks"]["loki"] == {"status": "ok", "detail": f"Loki at {loki_url} is ready"}
    assert "s3cret" not in str(health) and "s3cret" not in str(failing)


def test_without_loki_url_the_tool_says_so_and_health_is_not_degraded(serve_service, tmp_path):
    url, _ = serve_service(service, make_settings(nowhere(tmp_path)))

    result = rpc_call(url, "search_logs", {"query": '{app="web"}'})
    health = httpx.get(f"{url}/health", timeout=10)

    assert result["isError"] is True
    assert result["content"][0]["text"].startswith("search_logs needs LOKI_URL")
    assert health.status_code == 200
    assert health.json()["checks"]["loki"]["status"] == "not_configured"


def test_an_unreachable_loki_is_down_in_health_and_explained_by_the_tool(serve_service, tmp_path):
    gone = f"http://127.0.0.1:{free_port()}"
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), LOKI_URL=gone))

    health = httpx.get(f"{url}/health", timeout=10)
    result = rpc_call(url, "search_logs", {"query": '{app="web"}'})

    assert health.status_code == 503 and health.json()["checks"]["loki"]["status"] == "down"
    assert (
        result["isError"] is True and f"Loki at {gone} could not be reached" in result["content"][0]["text"]
    )
