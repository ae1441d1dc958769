"""``mcp-sse serve monitoring`` as a container runs it: settings from the environment, metrics port.

Loki is the stand-in of tests/services/monitoring/standins.py (Loki cannot run here).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from libmcp import SettingsError, build_server
from services.monitoring.service import service
from tests.services.monitoring.support import rpc_call
from tests.support.servers import ServiceProcess


def test_the_service_process_reads_its_settings_from_the_environment(loki):
    standin, loki_url = loki
    start = datetime.now(UTC) - timedelta(minutes=5)
    standin.streams = [
        ({"app": "web"}, [(int(start.timestamp()) * 10**9 + i, f"line {i}") for i in range(20)])
    ]
    env = {"LOKI_URL": loki_url, "MONITORING_MAX_LOG_LINES": "7", "MONITORING_NAMESPACES": "mcp,apps"}

    with ServiceProcess("monitoring", env=env, metrics=True) as process:
        health = httpx.get(f"{process.url}/health", timeout=10).json()
        result = rpc_call(process.url, "search_logs", {"query": '{app="web"}', "limit": 100})
        metrics = httpx.get(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=10).text

    assert health["checks"]["loki"]["status"] == "ok"
    assert health["checks"]["prometheus"]["status"] == "not_configured"
    assert standin.requests[-1].query["limit"] == "7"
    assert [entry["line"] for entry in result["structuredContent"]["entries"]] == [
        f"line {i}" for i in range(13, 20)
    ]
    assert 'mcp_tool_calls_total{outcome="ok",tool="search_logs"} 1.0' in metrics


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("DOCKER_HOST", "ssh://me@host", "use unix:///path/to/docker.sock or tcp://host:port"),
        ("LOKI_URL", "loki:3100", "must be an http:// or https:// URL"),
        ("PROMETHEUS_URL", "http://", "must be an http:// or https:// URL"),
        ("MONITORING_MAX_LOG_LINES", "0", "greater than 0"),
    ],
)
def test_malformed_settings_stop_start_up_naming_the_variable(variable, value, reason):
    with pytest.raises(SettingsError) as failure:
        build_server(service, environ={variable: value, "MCP_ENV_FILE": os.devnull})

    assert f"{variable}={value!r}" in str(failure.value) and reason in str(failure.value)
