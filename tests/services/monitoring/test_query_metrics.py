"""query_metrics against a real Prometheus (the Debian ``prometheus`` binary) scraping this very service.

The monitoring service runs on a loopback port with PROMETHEUS_URL pointing at a Prometheus started
for these tests, whose only scrape job reads the service's /metrics (with its bearer token) every
second; tool calls made here therefore show up in ``mcp_tool_calls_total`` a scrape later.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from libmcp import Server, ServerSettings
from services.monitoring.service import service
from tests.services.monitoring.support import make_settings, nowhere, rpc_call, run_prometheus, wait_for
from tests.support.servers import free_port, run_server

TOKEN = "scrape-and-call-token"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, str]]:
    """(service URL, Prometheus URL), Prometheus scraping the service."""
    prometheus_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(nowhere(Path(tmp)), PROMETHEUS_URL=f"http://127.0.0.1:{prometheus_port}")
        server = Server(service, settings, ServerSettings.model_validate({"auth_tokens": [TOKEN]}))
        with (
            run_server(server) as url,
            run_prometheus(prometheus_port, url[len("http://") :], TOKEN) as prom,
        ):
            yield url, prom


def call(url: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return rpc_call(url, tool, arguments, token=TOKEN)


def test_tool_calls_show_up_in_prometheus_after_a_scrape(stack):
    url, _ = stack
    for _ in range(3):
        assert call(url, "get_system_metrics", {})["isError"] is False

    def scraped() -> dict[str, Any] | None:
        result = call(url, "query_metrics", {"promql": 'mcp_tool_calls_total{tool="get_system_metrics"}'})
        series = result["structuredContent"]["series"]
        return result if series and float(series[0]["value"]["value"]) >= 3 else None

    result = wait_for(scraped, timeout=30)

    found = result["structuredContent"]
    assert found["result_type"] == "vector"
    (series,) = found["series"]
    assert series["metric"] == {
        "__name__": "mcp_tool_calls_total",
        "instance": url[len("http://") :],
        "job": "mcp-monitoring",
        "outcome": "ok",
        "tool": "get_system_metrics",
    }
    assert float(series["value"]["value"]) >= 3
    assert "mcp_tool_calls_total{" in result["content"][0]["text"]


def test_range_queries_return_samples_at_the_requested_step(stack):
    url, _ = stack

    def enough_samples() -> dict[str, Any] | None:
        result = call(
            url, "query_metrics", {"promql": 'up{job="mcp-monitoring"}', "start": "2m", "step": "1s"}
        )
        assert result["isError"] is False, result
        series = result["structuredContent"]["series"]
        return result["structuredContent"] if series and len(series[0]["values"]) >= 3 else None

    found = wait_for(enough_samples, timeout=30)

    assert found["result_type"] == "matrix"
    (series,) = found["series"]
    assert series["metric"]["job"] == "mcp-monitoring"
    assert {sample["value"] for sample in series["values"]} == {"1"}
    times = [sample["time"] for sample in series["values"]]
    assert times == sorted(times)


def test_scalars_come_back_as_a_single_sample(stack):
    url, _ = stack

    result = call(url, "query_metrics", {"promql": "1 + 1"})

    assert result["structuredContent"]["result_type"] == "scalar"
    assert result["structuredContent"]["scalar"]["value"] == "2"
    assert result["content"][0]["text"].startswith("1 + 1 = 2 at ")


def test_prometheus_errors_are_surfaced_with_their_type(stack):
    url, _ = stack

    malformed = call(url, "query_metrics", {"promql": "sum(rate(mcp_tool_calls_total[5m]"})
    too_fine = call(url, "query_metrics", {"promql": "up", "start": "30d", "step": "1s"})
    bad_step = call(url, "query_metrics", {"promql": "up", "start": "1h", "step": "often"})

    assert malformed["isError"] is True
    text = malformed["content"][0]["text"]
    assert text.startswith("Prometheus refused the query (bad_data): ")
    assert "parse error" in text
    assert too_fine["isError"] is True and "Prometheus allows 11000" in too_fine["content"][0]["text"]
    assert bad_step["isError"] is True and "step: 'often' is not a duration" in bad_step["content"][0]["text"]


def test_health_reports_prometheus_ready(stack):
    url, prometheus_url = stack

    health = httpx.get(f"{url}/health", timeout=10).json()

    assert health["status"] == "ok"
    assert health["checks"]["prometheus"] == {
        "status": "ok",
        "detail": f"Prometheus at {prometheus_url} is ready",
    }
    assert health["tools_count"] == 4


def test_without_prometheus_url_query_metrics_is_not_listed(serve_service, tmp_path):
    url, _ = serve_service(service, make_settings(nowhere(tmp_path)))

    listed = httpx.post(
        f"{url}/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10
    ).json()
    called = rpc_call(url, "query_metrics", {"promql": "up"})
    health = httpx.get(f"{url}/health", timeout=10).json()

    names = [tool["name"] for tool in listed["result"]["tools"]]
    assert names == ["get_container_logs", "search_logs", "get_system_metrics"]
    assert called["message"] == "Unknown tool: query_metrics"
    assert health["checks"]["prometheus"]["status"] == "not_configured"


def test_an_answer_larger_than_the_response_cap_is_refused_naming_the_setting(stack, serve_service, tmp_path):
    _, prometheus_url = stack
    capped = make_settings(
        nowhere(tmp_path), PROMETHEUS_URL=prometheus_url, MONITORING_MAX_RESPONSE_BYTES="1024"
    )
    url, _ = serve_service(service, capped)

    # Every series the scrape produced, over two minutes: far more than 1 KiB of JSON from Prometheus.
    everything = rpc_call(url, "query_metrics", {"promql": '{__name__=~".+"}', "start": "2m", "step": "1s"})
    small = rpc_call(url, "query_metrics", {"promql": "1 + 1"})

    assert everything["isError"] is True
    text = everything["content"][0]["text"]
    assert text.startswith(f"Prometheus at {prometheus_url}'s answer is larger than 1024 bytes")
    assert "MONITORING_MAX_RESPONSE_BYTES" in text and "narrow the query" in text
    assert small["isError"] is False and small["structuredContent"]["scalar"]["value"] == "2"
