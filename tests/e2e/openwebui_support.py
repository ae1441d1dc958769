"""Run Open WebUI's own MCP client (``openwebui_driver.py`` inside ``.tools/openwebui``) from the tests."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.conftest import require_tool
from tests.e2e.scenarios import ToolProbe
from tests.support.servers import REPO_ROOT

OPENWEBUI_VERSION = "0.12.4"
OPENWEBUI_VENV = REPO_ROOT / ".tools" / "openwebui"
OPENWEBUI_PYTHON = OPENWEBUI_VENV / "bin" / "python"
SETUP_SCRIPT = "scripts/setup.d/71-openwebui.sh"
DRIVER = Path(__file__).with_name("openwebui_driver.py")


def tool_server_connection(name: str, url: str, key: str, name_filter: str = "") -> dict[str, Any]:
    """One entry of Open WebUI's ``TOOL_SERVER_CONNECTIONS`` for an MCP (Streamable HTTP) server."""
    return {
        "type": "mcp",
        "url": f"{url}/mcp",
        "path": "",
        "auth_type": "bearer",
        "key": key,
        "config": {"enable": True, "function_name_filter_list": name_filter},
        "info": {"id": name, "name": name, "description": f"mcp-sse {name}"},
    }


def require_openwebui() -> None:
    """Skip (fail in CI) without the tool venv; fail when it holds another open-webui version."""
    require_tool(OPENWEBUI_PYTHON, SETUP_SCRIPT)
    stamp = OPENWEBUI_VENV / f".installed-open-webui-{OPENWEBUI_VERSION}"
    assert stamp.exists(), f"re-run bash {SETUP_SCRIPT}"


def run_driver(servers: list[dict[str, Any]], workdir: Path) -> list[dict[str, Any]]:
    """Drive ``[{"connection": ..., "calls": [...]}, ...]`` through Open WebUI's client; one answer each."""
    env = {
        **os.environ,
        "DATA_DIR": str(workdir),
        "WEBUI_SECRET_KEY": secrets.token_hex(16),
        "GLOBAL_LOG_LEVEL": "WARNING",
    }
    completed = subprocess.run(
        [str(OPENWEBUI_PYTHON), str(DRIVER)],
        input=json.dumps({"servers": servers}),
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    answers: list[dict[str, Any]] = json.loads(completed.stdout.strip().splitlines()[-1])["servers"]
    return answers


def probe_call(probe: ToolProbe) -> dict[str, Any]:
    return {"tool": probe.tool, "arguments": probe.arguments}


def structured_from(content: list[dict[str, Any]]) -> dict[str, Any]:
    """The structured result in what ``MCPClient.call_tool`` returns: the last text block holding a JSON
    object (Open WebUI appends structuredContent as JSON text when the text block says something else)."""
    for block in reversed(content):
        if block.get("type") == "text":
            try:
                value = json.loads(block["text"])
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise AssertionError(f"no JSON object in {content}")
