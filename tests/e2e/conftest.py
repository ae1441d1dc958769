"""Fixtures of the end-to-end tier: all five services as real processes, with bearer auth and backends.

Each service runs as ``mcp-sse serve NAME`` (a child process, what a container runs) with
``MCP_AUTH_TOKENS=secret-token`` and its backend on loopback (see ``scenarios.py``). The expected tool
names come from each running service's own ``tools/list``, never from a list written in a test.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.scenarios import E2E_TOKEN, PREPARERS, SERVICE_NAMES, ToolProbe, service_written
from tests.support.servers import ServiceProcess


@dataclass
class RunningService:
    """A service process under test and what it says about itself."""

    name: str
    url: str
    tools: list[str]
    probe: ToolProbe

    def auth_rejections(self) -> float:
        """``mcp_http_rejections_total{reason="auth"}``: requests this service refused with 401."""
        metrics = httpx.get(f"{self.url}/metrics", headers=bearer(E2E_TOKEN), timeout=10).text
        match = re.search(r'^mcp_http_rejections_total\{reason="auth"\} (\S+)$', metrics, re.MULTILINE)
        return float(match.group(1)) if match else 0.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def list_tool_names(url: str, token: str) -> list[str]:
    """The service's own ``tools/list`` (every page), over plain JSON-RPC."""
    names: list[str] = []
    cursor: str | None = None
    while True:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        if cursor:
            body["params"]["cursor"] = cursor
        response = httpx.post(f"{url}/rpc", json=body, headers=bearer(token), timeout=30)
        response.raise_for_status()
        result = response.json()["result"]
        names += [tool["name"] for tool in result["tools"]]
        cursor = result.get("nextCursor")
        if not cursor:
            return names


class Fleet:
    """The services that could be started; a service that failed keeps its error for its own tests."""

    def __init__(self) -> None:
        self.running: dict[str, RunningService] = {}
        self.errors: dict[str, BaseException] = {}

    def get(self, name: str) -> RunningService:
        if name in self.errors:
            raise RuntimeError(
                f"service {name} could not be started for the end-to-end tests"
            ) from self.errors[name]
        if name not in self.running:
            pytest.skip(f"services/{name}/service.py is not written yet")
        return self.running[name]


@pytest.fixture(scope="session")
def e2e_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Every written service with its backend, started side by side (each start imports the whole package)."""
    fleet = Fleet()
    with ExitStack() as stack:
        starting: dict[str, tuple[ServiceProcess, ToolProbe]] = {}
        for name in SERVICE_NAMES:
            if not service_written(name):
                continue
            try:
                prepared = PREPARERS[name](tmp_path_factory.mktemp(f"e2e-{name}"), stack)
            except Exception as exc:
                fleet.errors[name] = exc
                continue
            env = {"MCP_AUTH_TOKENS": E2E_TOKEN, "MCP_LOG_LEVEL": "WARNING", **prepared.env}
            starting[name] = (ServiceProcess(name, env=env), prepared.probe)
        stack.callback(_stop_all, [process for process, _ in starting.values()])
        with ThreadPoolExecutor(max_workers=len(starting) or 1) as pool:
            started = {name: pool.submit(process.start, 90) for name, (process, _) in starting.items()}
        for name, future in started.items():
            process, probe = starting[name]
            try:
                future.result()
                tools = list_tool_names(process.url, E2E_TOKEN)
            except Exception as exc:
                fleet.errors[name] = exc
                continue
            fleet.running[name] = RunningService(name, process.url, tools, probe)
        yield fleet


def _stop_all(processes: list[ServiceProcess]) -> None:
    """SIGTERM every service at once, then wait for each (killing one that outlives its grace period)."""
    running = [p for p in processes if p.process is not None and p.process.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            assert process.process is not None
            process.process.kill()
            process.wait()


@pytest.fixture(params=SERVICE_NAMES)
def e2e_service(request: pytest.FixtureRequest, e2e_fleet: Fleet) -> RunningService:
    """Each of the five services in turn (skipped while its module is not written yet)."""
    return e2e_fleet.get(request.param)


def require_tool(venv_python: os.PathLike[str] | str, setup_script: str) -> None:
    """Skip when a tool venv is missing on a developer machine; fail in CI, where bootstrap installs it."""
    if os.path.exists(venv_python):
        return
    message = f"{venv_python} is missing: run bash {setup_script}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
