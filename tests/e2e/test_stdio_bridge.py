"""A stdio-only MCP client (Claude Desktop's kind) reaches every service through the mcp-remote bridge.

``mcp-remote`` 0.15.1 (npm, ``scripts/setup.d/73-mcp-remote.sh``) is what Claude Desktop's
``claude_desktop_config.json`` launches for a remote server: it speaks MCP over stdio to the client and
over HTTP to the service, with our bearer token passed through ``--header``. Here the official SDK's stdio
client stands in for Claude Desktop (which does not run on Linux) and launches the bridge exactly as
the config in docs/INTEGRATION.md does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.e2e.conftest import RunningService, require_tool
from tests.e2e.scenarios import E2E_TOKEN
from tests.support.servers import REPO_ROOT

pytestmark = pytest.mark.slow

MCP_REMOTE = REPO_ROOT / ".tools" / "mcp-remote" / "node_modules" / ".bin" / "mcp-remote"
SETUP_SCRIPT = "scripts/setup.d/73-mcp-remote.sh"
BRIDGE_TRANSPORTS = {"http-only": "/mcp", "sse-only": "/sse"}


def bridge(url: str, transport: str, config_dir: Path) -> StdioServerParameters:
    """The ``command``/``args``/``env`` of a Claude Desktop ``mcpServers`` entry using mcp-remote."""
    return StdioServerParameters(
        command=str(MCP_REMOTE),
        # No space inside args (some clients split them); mcp-remote expands ${AUTH_HEADER} from env.
        args=[url, "--header", "Authorization:${AUTH_HEADER}", "--transport", transport],
        env={
            "PATH": os.environ["PATH"],
            "AUTH_HEADER": f"Bearer {E2E_TOKEN}",
            "MCP_REMOTE_CONFIG_DIR": str(config_dir),
        },
    )


@pytest.mark.parametrize("transport", BRIDGE_TRANSPORTS)
async def test_stdio_client_lists_and_calls_tools_through_mcp_remote(
    e2e_service: RunningService, transport: str, tmp_path: Path
) -> None:
    require_tool(MCP_REMOTE, SETUP_SCRIPT)
    probe = e2e_service.probe
    params = bridge(e2e_service.url + BRIDGE_TRANSPORTS[transport], transport, tmp_path)

    with (tmp_path / "bridge.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            listed = await session.list_tools()
            result = await session.call_tool(probe.tool, probe.arguments)

    assert [tool.name for tool in listed.tools] == e2e_service.tools
    assert result.is_error is False, result
    assert result.structured_content is not None
    probe.check(result.structured_content)
    probe.check_text(result.content[0].text)  # type: ignore[union-attr]
