from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from libmcp import Server
from tests.libmcp.demo_service import service
from tests.support.servers import REPO_ROOT, free_port

MODERN = "2026-07-28"


@pytest.fixture
def demo(serve_service: Callable[..., tuple[str, Server]]) -> tuple[str, Server]:
    """The demo service on a loopback port with default settings."""
    return serve_service(service)


def envelope(version: str = MODERN) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    }


def modern_post(
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    request_id: int | str | None = 1,
) -> httpx.Response:
    """POST one 2026-07-28 request with a matching envelope and routing headers (overridable)."""
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "method": method,
        "params": {**(params or {}), "_meta": envelope()},
    }
    if request_id is not None:
        body["id"] = request_id
    sent = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if method == "tools/call" and params:
        sent["Mcp-Name"] = params["name"]
    sent.update(headers or {})
    return httpx.post(f"{url}/mcp", json=body, headers=sent)


def rpc(
    url: str, method: str, params: dict[str, Any] | None = None, path: str = "/rpc", **kwargs: Any
) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return httpx.post(f"{url}{path}", json=body, **kwargs)


@contextlib.contextmanager
def demo_process(
    env: dict[str, str] | None = None, metrics_port: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The demo service as a real process (``python -m tests.libmcp.demo_service``), healthy on a free port.

    Yields the process (stdout and stderr piped together) and its base URL; kills it afterwards if the
    test has not stopped it.
    """
    port = free_port()
    command = [sys.executable, "-m", "tests.libmcp.demo_service", str(port)]
    if metrics_port is not None:
        command.append(str(metrics_port))
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MCP_ENV_FILE": os.devnull, **(env or {})}
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the demo service did not become healthy (exit code {process.poll()})")
            time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
