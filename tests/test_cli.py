"""The ``mcp-sse`` command against real running services."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading

import httpx
import pytest
import yaml

from tests.support.servers import REPO_ROOT, ServiceProcess, free_port

TOKEN = "cli-token"


def mcp_sse(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MCP_ENV_FILE": os.devnull, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli", *args],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def filesystem(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    (root / "hello.txt").write_text("hello from the cli test\n")
    with ServiceProcess("filesystem", {"ALLOWED_PATHS": f"{root}:rw", "MCP_AUTH_TOKENS": TOKEN}) as process:
        yield process


def test_tools_lists_the_running_service(filesystem):
    result = mcp_sse("tools", filesystem.url, "--token", TOKEN)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert "read_file" in names and "write_file" in names
    assert "read-only" in next(line for line in result.stdout.splitlines() if line.startswith("read_file"))


def test_tools_without_the_token_says_so(filesystem):
    result = mcp_sse("tools", filesystem.url)
    assert result.returncode == 1
    assert "401" in result.stderr


def test_call_prints_the_structured_result(filesystem):
    result = mcp_sse("call", f"{filesystem.url}/mcp", "read_file", '{"path": "hello.txt"}', "--token", TOKEN)
    assert result.returncode == 0, result.stderr
    assert "hello from the cli test" in json.dumps(json.loads(result.stdout))


def test_call_reports_tool_errors_with_exit_1(filesystem):
    result = mcp_sse("call", filesystem.url, "read_file", '{"path": "../etc/passwd"}', "--token", TOKEN)
    assert result.returncode == 1
    assert "etc/passwd" in result.stdout


def test_call_rejects_arguments_that_are_not_a_json_object(filesystem):
    result = mcp_sse("call", filesystem.url, "read_file", "[1]", "--token", TOKEN)
    assert result.returncode == 2
    assert "must be a JSON object" in result.stderr


def test_discover_shows_health_and_live_tools(filesystem):
    unreachable = f"http://127.0.0.1:{free_port()}"
    result = mcp_sse("discover", filesystem.url, unreachable, "--token", TOKEN, "--json")
    assert result.returncode == 1  # one of the two is down
    up, down = json.loads(result.stdout)
    assert up["service"] == "filesystem" and up["status"] == "ok"
    assert "read_file" in up["tools"]
    assert down["status"] == "down"


def test_discover_table_names_each_service(filesystem):
    result = mcp_sse("discover", filesystem.url, "--token", TOKEN)
    assert result.returncode == 0
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["SERVICE", "URL", "STATUS"]
    assert row.split()[:3] == ["filesystem", filesystem.url, "ok"]


@pytest.mark.parametrize(
    ("target", "transport", "url"),
    [
        ("local", "http", "http://127.0.0.1:8003/mcp"),
        ("compose", "sse", "http://mcp-filesystem:8003/sse"),
        ("chart", "http", "http://mcp-sse-filesystem.ai.svc.cluster.local:8003/mcp"),
    ],
)
def test_litellm_config_for_each_target(target, transport, url):
    result = mcp_sse(
        "config",
        "litellm",
        "--target",
        target,
        "--transport",
        transport,
        "--namespace",
        "ai",
        "--auth-env",
        "MCP_TOKEN",
        "--service",
        "filesystem",
    )
    assert result.returncode == 0, result.stderr
    server = yaml.safe_load(result.stdout)["mcp_servers"]["filesystem"]
    assert server["url"] == url
    assert server["transport"] == transport
    assert server["auth_type"] == "bearer_token"
    assert server["authentication_token"] == "os.environ/MCP_TOKEN"
    # LiteLLM 1.110 refuses to start without a strong master key: the block names where it comes from.
    settings = yaml.safe_load(result.stdout)["general_settings"]
    assert settings == {"master_key": "os.environ/LITELLM_MASTER_KEY"}


def test_chart_release_names_follow_the_chart_helper():
    result = mcp_sse("config", "litellm", "--target", "chart", "--release", "tools", "--service", "github")
    assert (
        yaml.safe_load(result.stdout)["mcp_servers"]["github"]["url"]
        == "http://tools-mcp-sse-github.default.svc.cluster.local:8004/mcp"
    )


def test_openwebui_connections_carry_the_token_from_the_named_variable():
    result = mcp_sse("config", "openwebui", "--auth-env", "WEBUI_MCP_TOKEN", env={"WEBUI_MCP_TOKEN": "t0k"})
    assert result.returncode == 0, result.stderr
    connections = json.loads(result.stdout)
    assert [connection["url"] for connection in connections] == [
        f"http://127.0.0.1:{port}/mcp" for port in (8001, 8002, 8003, 8004, 8005)
    ]
    assert {connection["type"] for connection in connections} == {"mcp"}
    assert {connection["key"] for connection in connections} == {"t0k"}


def test_openwebui_config_refuses_an_unset_token_variable():
    result = mcp_sse("config", "openwebui", "--auth-env", "NOT_SET_ANYWHERE")
    assert result.returncode == 2
    assert "NOT_SET_ANYWHERE" in result.stderr


def test_up_keeps_running_when_one_service_cannot_start_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "MCP_ENV_FILE": os.devnull,
        "MCP_PORT": str(port),
        "MCP_METRICS_PORT": "0",
        "ALLOWED_PATHS": f"{tmp_path}:rw",
    }
    # Both services are told to use the same port: exactly one of them can bind it.
    command = [sys.executable, "-m", "fleet.cli", "up", "filesystem", "fetch"]
    runner = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reported = threading.Event()

    def read_stderr() -> None:
        assert runner.stderr is not None
        for line in runner.stderr:
            lines.append(line)
            if "the others keep running" in line:
                reported.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert reported.wait(timeout=120), "".join(lines)
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
        assert health["status"] == "ok"
        assert runner.poll() is None, "the runner must keep going while one service is up"
        runner.send_signal(signal.SIGINT)
        runner.wait(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    reader.join(timeout=10)
    assert runner.returncode == 0
    assert re.search(r"(filesystem|fetch) exited with code [1-9]\d*; the others keep running", "".join(lines))
