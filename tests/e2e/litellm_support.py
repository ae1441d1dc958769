"""Run the real LiteLLM proxy against our services: write its config.yaml, start it, call its MCP endpoints.

Each proven LiteLLM version is installed in a venv of its own (``.tools/litellm-<version>``) by
``scripts/setup.d/70-litellm.sh``, because it pins many packages that must not leak into ``.venv``.
:class:`LiteLLMProxy` runs ``litellm --config config.yaml`` of one version on a free loopback port without
a database, and wraps the REST side of its MCP gateway:

- ``GET /v1/mcp/server``: the configured servers with their ``server_id``;
- ``GET /mcp-rest/tools/list``: every server's tools, each tagged with ``mcp_info.server_name``, plus a
  ``server_outcomes`` map (LiteLLM swallows upstream errors into an empty list and notes them there);
- ``POST /mcp-rest/tools/call`` with ``{"name", "arguments", "server_id"}``.

LiteLLM's MCP endpoint proper (``/mcp``, where tools carry the ``<server_name>-`` prefix) is driven with
the official SDK client by the tests themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

from tests.support.servers import REPO_ROOT, free_port

# The versions the end-to-end tests prove; scripts/setup.d/70-litellm.sh installs exactly these.
LITELLM_VERSIONS = ("1.109.1", "1.110.2")
SETUP_SCRIPT = "scripts/setup.d/70-litellm.sh"
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"


def litellm_venv(version: str) -> Path:
    return REPO_ROOT / ".tools" / f"litellm-{version}"


def litellm_bin(version: str) -> Path:
    return litellm_venv(version) / "bin" / "litellm"


def is_installed(version: str) -> bool:
    """Whether the setup script finished installing ``version`` (it writes the stamp file last)."""
    venv = litellm_venv(version)
    return litellm_bin(version).exists() and (venv / f".installed-litellm-{version}").exists()


@dataclass(frozen=True)
class McpServerEntry:
    """One ``mcp_servers`` entry of LiteLLM's config.yaml pointing at one of our services."""

    url: str
    transport: Literal["http", "sse"]
    token: str | None = None
    allowed_tools: Sequence[str] = ()

    def to_config(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"url": self.url, "transport": self.transport}
        if self.token:
            # LiteLLM sends "Authorization: Bearer <authentication_token>" on every upstream request.
            entry["auth_type"] = "bearer_token"
            entry["authentication_token"] = self.token
        if self.allowed_tools:
            entry["allowed_tools"] = list(self.allowed_tools)
        return entry


def service_entry(base_url: str, transport: Literal["http", "sse"], **options: Any) -> McpServerEntry:
    """The entry for a service at ``base_url``: ``/mcp`` for Streamable HTTP, ``/sse`` for legacy SSE."""
    path = "/mcp" if transport == "http" else "/sse"
    return McpServerEntry(url=base_url.rstrip("/") + path, transport=transport, **options)


def write_config(
    path: Path,
    servers: Mapping[str, McpServerEntry | Mapping[str, Any]],
    general_settings: Mapping[str, Any],
) -> Path:
    """Write a database-less LiteLLM config.yaml whose ``mcp_servers`` are ``servers``."""
    config = {
        "general_settings": dict(general_settings),
        "litellm_settings": {"telemetry": False},
        "mcp_servers": {
            name: entry.to_config() if isinstance(entry, McpServerEntry) else dict(entry)
            for name, entry in servers.items()
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class LiteLLMProxy:
    """``litellm --config CONFIG`` of one version on a free loopback port, stopped with SIGTERM (its whole
    group)."""

    def __init__(
        self,
        config: Path,
        master_key: str,
        version: str,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.config = config
        self.version = version
        self.extra_env = dict(env or {})
        self.master_key = master_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> LiteLLMProxy:
        env = {
            **os.environ,
            # The model price map is fetched from the internet unless told to use the bundled copy.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "True",
            **self.extra_env,
        }
        env.pop("DATABASE_URL", None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(litellm_bin(self.version)),
                    "--config",
                    str(self.config),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=env,
                cwd=self.config.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"litellm exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/liveliness", timeout=2).status_code == 200:
                    return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"litellm did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> LiteLLMProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- LiteLLM's REST endpoints for MCP ----------------------------------------------------------

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"}

    def _get(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=60)
        response.raise_for_status()
        return response.json()

    def server_ids(self) -> dict[str, str]:
        """``{server_name: server_id}`` from ``GET /v1/mcp/server``."""
        return {server["server_name"]: server["server_id"] for server in self._get("/v1/mcp/server")}

    def list_tools(self) -> dict[str, Any]:
        """``GET /mcp-rest/tools/list``: ``{"tools": [...], "server_outcomes": {...}, ...}``."""
        result: dict[str, Any] = self._get("/mcp-rest/tools/list")
        return result

    def tools_by_server(self) -> dict[str, set[str]]:
        """Tool names grouped by the LiteLLM server name that listed them."""
        grouped: dict[str, set[str]] = {}
        for tool in self.list_tools()["tools"]:
            grouped.setdefault(tool["mcp_info"]["server_name"], set()).add(tool["name"])
        return grouped

    def call_tool(self, server_id: str, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /mcp-rest/tools/call``; returns the MCP ``CallToolResult`` as JSON."""
        response = httpx.post(
            f"{self.url}/mcp-rest/tools/call",
            json={"server_id": server_id, "name": name, "arguments": dict(arguments)},
            headers=self.headers,
            timeout=120,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@contextlib.contextmanager
def running_proxy(
    directory: Path,
    servers: Mapping[str, McpServerEntry | Mapping[str, Any]],
    master_key: str,
    version: str,
    *,
    general_settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[LiteLLMProxy]:
    """Write ``directory/config.yaml`` for ``servers`` and run LiteLLM ``version`` on it (with ``env``
    added to its environment, for ``os.environ/NAME`` references) for the ``with`` block.

    ``general_settings`` default to ``master_key`` written inline; pass what ``mcp-sse config litellm``
    prints (``master_key: os.environ/LITELLM_MASTER_KEY``) to run it as printed."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = general_settings if general_settings is not None else {"master_key": master_key}
    config = write_config(directory / "config.yaml", servers, settings)
    with LiteLLMProxy(config, master_key, version, env=env) as proxy:
        yield proxy
