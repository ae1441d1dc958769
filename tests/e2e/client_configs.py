"""The client configurations ``mcp-sse config litellm|openwebui`` prints, pointed at the services under test.

The command prints URLs for the registry ports (``--target local``: 127.0.0.1:8001..8005); the services
under test listen on free ports instead, so the only edit made to what it prints is that port. Every
other field (server names, ``transport``, ``auth_type: bearer_token`` with
``authentication_token: os.environ/E2E_MCP_TOKEN``, Open WebUI's connection fields) reaches the client
exactly as printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import yaml

from fleet.registry import load_registry
from tests.e2e.conftest import Fleet, RunningService
from tests.e2e.scenarios import E2E_TOKEN
from tests.support.servers import REPO_ROOT

TOKEN_ENV = "E2E_MCP_TOKEN"
"""The variable the printed configurations read the bearer token from (``--auth-env``)."""


def mcp_sse_config(client: str, *arguments: str) -> str:
    """The standard output of ``mcp-sse config CLIENT ARGUMENTS`` (with ``E2E_MCP_TOKEN`` set)."""
    completed = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "config", client, *arguments],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, TOKEN_ENV: E2E_TOKEN},
        timeout=60,
        check=True,
    )
    return completed.stdout


def _service_flags(fleet: Fleet) -> list[str]:
    return [flag for name in fleet.running for flag in ("--service", name)]


def to_test_port(url: str, service: RunningService) -> str:
    """``http://127.0.0.1:<registry port>/path`` -> the same URL on the port the test service listens on."""
    registry_base = f"http://127.0.0.1:{load_registry()[service.name].port}"
    assert url.startswith(registry_base + "/"), url
    return service.url + url.removeprefix(registry_base)


def printed_litellm_servers(fleet: Fleet, transport: str) -> dict[str, dict[str, Any]]:
    """The ``mcp_servers`` block printed for ``--transport TRANSPORT --auth-env E2E_MCP_TOKEN``."""
    printed = mcp_sse_config(
        "litellm", "--transport", transport, "--auth-env", TOKEN_ENV, *_service_flags(fleet)
    )
    servers: dict[str, dict[str, Any]] = yaml.safe_load(printed)["mcp_servers"]
    return {
        name: {**entry, "url": to_test_port(entry["url"], fleet.get(name))} for name, entry in servers.items()
    }


def printed_openwebui_connections(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """``TOOL_SERVER_CONNECTIONS`` printed for ``--auth-env E2E_MCP_TOKEN``, by service name."""
    connections = json.loads(mcp_sse_config("openwebui", "--auth-env", TOKEN_ENV, *_service_flags(fleet)))
    return {
        name: {**connection, "url": to_test_port(connection["url"], fleet.get(name))}
        for name, connection in zip(fleet.running, connections, strict=True)
    }
