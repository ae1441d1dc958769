"""The Grafana dashboard (charts/mcp-sse/files/dashboard.json) against a real Prometheus and service.

A filesystem service runs on loopback with its metrics port; Debian's Prometheus scrapes it every second
and loads the alert rules file as compose would. After a few tool calls (one failing), a refused request
and a /health run, every query of every panel, with the dashboard's variables filled the way Grafana fills
them, must return data through Prometheus' HTTP API.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.helm_support import CHART_DIR
from tests.support.servers import ServiceProcess, free_port

DASHBOARD = CHART_DIR / "files" / "dashboard.json"
RULES = CHART_DIR / "files" / "alerts.yaml"
JOB = "mcp-filesystem"
TOKEN = "dashboard-test-token"
SCRAPE_INTERVAL = "1s"
# Grafana's $__rate_interval is at least four scrape intervals of the data source; a little more keeps
# two samples of each counter in the window on a busy machine.
RATE_INTERVAL = "20s"


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every target of every panel."""
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def grafana_regex_value(values: list[str]) -> str:
    """A multi-value variable in a Prometheus query as Grafana writes it: regex-escaped, (a|b) for two."""
    escaped = [
        re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda match: "\\\\" + match.group(0), value) for value in values
    ]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


class Prometheus:
    """Debian's prometheus on a free loopback port with a throw-away data directory."""

    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log_path = directory / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Prometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is missing: apt-get install prometheus (scripts/apt/monitoring.txt)")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus was not ready within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expression)["result"]
        return result


@pytest.fixture(scope="module")
def scraped_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, Prometheus]]:
    root = tmp_path_factory.mktemp("files")
    (root / "notes.txt").write_text("hello\n", encoding="utf-8")
    service = ServiceProcess(
        "filesystem",
        {"ALLOWED_PATHS": str(root), "MCP_AUTH_TOKENS": TOKEN, "MCP_LOG_LEVEL": "WARNING"},
        metrics=True,
    )
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{service.metrics_port}"]}]}
        ],
    }
    with service:
        prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"), config).start()
        try:
            yield service, prometheus
        finally:
            prometheus.stop()


def call_tool(
    service: ServiceProcess, name: str, arguments: dict[str, Any], token: str | None = TOKEN
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return httpx.post(f"{service.url}/rpc", json=message, headers=headers, timeout=10).status_code


def drive_traffic(service: ServiceProcess) -> None:
    """A few calls that succeed, one that fails, one refused for want of a token, and a /health run."""
    for _ in range(3):
        assert call_tool(service, "read_file", {"path": "notes.txt"}) == 200
    assert call_tool(service, "read_file", {"path": "missing.txt"}) == 200  # an isError result
    assert call_tool(service, "list_allowed_roots", {}, token=None) == 401
    assert httpx.get(f"{service.url}/health", timeout=10).status_code == 200


def has_data(result: list[dict[str, Any]]) -> bool:
    return any(sample["value"][1] not in ("NaN", "+Inf", "-Inf") for sample in result)


def test_every_panel_has_a_prometheus_query_over_the_job_variable() -> None:
    dashboard = load_dashboard()
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["query"]["query"] == "label_values(mcp_service_info, job)"
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(titles) == len(set(titles)) >= 8
    for title, expression in panel_queries(dashboard):
        assert '{job=~"$job"' in expression or 'job=~"$job"' in expression, title
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    covered = " ".join(expression for _, expression in panel_queries(dashboard))
    for metric in (
        "mcp_tool_calls_total",
        "mcp_tool_duration_seconds_bucket",
        "mcp_sse_sessions_open",
        "mcp_sse_sessions_max",
        "mcp_backend_up",
        "mcp_http_rejections_total",
        "up{",
    ):
        assert metric in covered, metric


def test_prometheus_loads_the_alert_rules_file_as_compose_would(
    scraped_service: tuple[ServiceProcess, Prometheus],
) -> None:
    _, prometheus = scraped_service
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 6
    assert all(rule["health"] in ("ok", "unknown") for rule in rules), rules


def test_every_panel_query_returns_data_from_a_real_scrape(
    scraped_service: tuple[ServiceProcess, Prometheus],
) -> None:
    service, prometheus = scraped_service
    deadline = time.monotonic() + 60
    while not prometheus.query(f'up{{job="{JOB}"}} == 1') and time.monotonic() < deadline:
        time.sleep(0.5)
    assert prometheus.query(f'up{{job="{JOB}"}} == 1'), prometheus.log_tail()
    jobs = prometheus.api("label/job/values", **{"match[]": "mcp_service_info"})
    assert jobs == [JOB]
    queries = [
        (
            title,
            expression.replace("$job", grafana_regex_value(jobs)).replace("$__rate_interval", RATE_INTERVAL),
        )
        for title, expression in panel_queries(load_dashboard())
    ]

    empty = queries
    while empty and time.monotonic() < deadline:
        drive_traffic(service)
        time.sleep(2)
        empty = [
            (title, expression) for title, expression in empty if not has_data(prometheus.query(expression))
        ]

    assert empty == []


def test_the_failed_call_and_the_refused_request_show_on_their_panels(
    scraped_service: tuple[ServiceProcess, Prometheus],
) -> None:
    """Runs after the traffic above: the error and rejection panels show the exact label sets."""
    _, prometheus = scraped_service
    by_title = dict(panel_queries(load_dashboard()))
    errors = by_title["Tool errors per second, by tool and outcome"].replace("$job", JOB)
    refused = by_title["Refused requests per second, by reason"].replace("$job", JOB)
    window = "5m"
    error_series = prometheus.query(errors.replace("$__rate_interval", window))
    refused_series = prometheus.query(refused.replace("$__rate_interval", window))
    assert {(series["metric"]["tool"], series["metric"]["outcome"]) for series in error_series} == {
        ("read_file", "tool_error")
    }
    assert {series["metric"]["reason"] for series in refused_series} == {"auth"}
