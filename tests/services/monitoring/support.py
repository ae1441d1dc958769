"""Helpers of the monitoring tests: settings on a chosen platform, JSON-RPC calls, a real Prometheus."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.monitoring.settings import MonitoringSettings, Platform

SERVICE_ACCOUNT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.standin-service-account-token"


def nowhere(tmp: Path) -> Platform:
    """A platform with no Kubernetes environment and no Docker socket."""
    return Platform(environ={}, serviceaccount_dir=tmp / "no-account", docker_socket=tmp / "no-docker.sock")


def make_settings(platform: Platform, **values: Any) -> MonitoringSettings:
    """Settings from variables as the environment would give them (``MONITORING_MAX_LOG_LINES="5"``)."""
    fields = {key.lower(): value for key, value in values.items()}
    return MonitoringSettings.model_validate(fields).on_platform(platform)


def rpc_call(url: str, tool: str, arguments: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """``tools/call`` over plain JSON-RPC; returns the ``result`` object (or the ``error`` one)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"name": tool, "arguments": arguments}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    response = httpx.post(f"{url}/rpc", json=body, headers=headers, timeout=60)
    response.raise_for_status()
    payload: dict[str, Any] = response.json()
    return payload.get("result") or payload["error"]


@contextlib.contextmanager
def run_prometheus(port: int, target: str, bearer_token: str) -> Iterator[str]:
    """Run the ``prometheus`` binary on 127.0.0.1:``port``, scraping ``target``'s /metrics every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: scripts/apt/monitoring.txt lists it (scripts/bootstrap.sh)")
    directory = Path(tempfile.mkdtemp(prefix="mcp-prometheus-"))
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: mcp-monitoring\n"
        "    metrics_path: /metrics\n"
        f"    authorization: {{credentials: {bearer_token}}}\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start:\n{(directory / 'prometheus.log').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def wait_for(probe: Callable[[], Any], timeout: float = 30, interval: float = 0.5) -> Any:
    """Call ``probe`` until it returns something truthy (bounded); return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value {value!r}")
        time.sleep(interval)
