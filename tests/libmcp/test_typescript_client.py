"""An independent client: the official MCP TypeScript SDK (npm), run by the machine's Node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.libmcp.demo_service import service

NODE_DIR = Path(__file__).parent / "node"


def run_client(url: str, transport: str, tool: str, arguments: dict, token: str | None = None) -> dict:
    command = ["node", "client.mjs", url, transport, tool, json.dumps(arguments)] + ([token] if token else [])
    completed = subprocess.run(command, cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("transport", ["sse", "http"])
def test_typescript_sdk_lists_and_calls_tools(serve_service, transport):
    url, _ = serve_service(service, auth_tokens=["ts-token"])
    output = run_client(url, transport, "echo", {"text": "from node", "times": 2}, token="ts-token")
    assert output["serverName"] == "demo"
    assert [tool["name"] for tool in output["tools"]] == ["echo", "noop", "sleep", "fail", "crash"]
    assert output["tools"][0]["annotations"]["readOnlyHint"] is True
    assert output["result"]["structuredContent"] == {"text": "from nodefrom node", "greeting": "hello"}
    assert output["result"]["isError"] is False


def test_typescript_sdk_sees_tool_errors_as_results(serve_service):
    url, _ = serve_service(service)
    output = run_client(url, "http", "fail", {"reason": "quota exceeded"})
    assert output["result"]["isError"] is True
    assert output["result"]["content"][0]["text"] == "quota exceeded"
