"""Settings come from the environment and an optional env file; bad ones stop start-up by name."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from libmcp import SettingsError, build_server
from libmcp.config import read_env_file
from tests.libmcp.demo_service import service
from tests.support.servers import REPO_ROOT, free_port


def build(environ: dict[str, str]):
    return build_server(service, environ={"MCP_ENV_FILE": os.devnull, **environ})


def test_defaults_bind_loopback_with_no_auth():
    server = build({})
    assert server.server_settings.host == "127.0.0.1"
    assert server.server_settings.auth_tokens == []
    assert server.settings.demo_greeting == "hello"


def test_environment_values_are_parsed():
    server = build(
        {
            "MCP_AUTH_TOKENS": "a, b,,c",
            "MCP_MAX_BODY_BYTES": "2048",
            "DEMO_GREETING": "hi",
            "MCP_LOG_LEVEL": "debug",
        }
    )
    assert server.server_settings.auth_tokens == ["a", "b", "c"]
    assert server.server_settings.max_body_bytes == 2048
    assert server.server_settings.log_level == "DEBUG"
    assert server.settings.demo_greeting == "hi"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MCP_MAX_BODY_BYTES", "lots"),
        ("MCP_PORT", "70000"),
        ("MCP_LOG_LEVEL", "loud"),
        ("MCP_RATE_LIMIT_PER_MINUTE", "-1"),
        ("MCP_SHUTDOWN_GRACE_S", "soon"),
    ],
)
def test_malformed_values_name_the_variable(variable, value):
    with pytest.raises(SettingsError) as caught:
        build({variable: value})
    assert variable in str(caught.value)
    assert repr(value) in str(caught.value)


def test_secret_values_are_not_echoed_in_errors():
    with pytest.raises(SettingsError) as caught:
        build({"MCP_AUTH_TOKENS": "sekrit", "MCP_PORT": "x"})
    assert "sekrit" not in str(caught.value)


def test_unknown_mcp_variables_in_the_environment_are_refused():
    with pytest.raises(SettingsError, match=r"MCP_AUTH_TOKEN\b"):
        build({"MCP_AUTH_TOKEN": "typo"})


def test_env_file_is_read_after_the_environment(tmp_path):
    env_file = tmp_path / "sse.env"
    env_file.write_text('# comment\nexport DEMO_GREETING="from file"\nMCP_MAX_BODY_BYTES=4096 # inline\n')
    server = build_server(service, environ={"MCP_ENV_FILE": str(env_file), "MCP_MAX_BODY_BYTES": "8192"})
    assert server.settings.demo_greeting == "from file"
    assert server.server_settings.max_body_bytes == 8192


def test_unknown_keys_in_the_env_file_are_refused(tmp_path):
    env_file = tmp_path / "sse.env"
    env_file.write_text("DEMO_GREETING=x\nGITHUB_TOKN=oops\nOTEL_SERVICE_NAME=allowed\n")
    with pytest.raises(SettingsError, match="GITHUB_TOKN"):
        build_server(service, environ={"MCP_ENV_FILE": str(env_file)})


def test_variables_of_sibling_services_are_known_when_declared(tmp_path):
    env_file = tmp_path / "sse.env"
    env_file.write_text("GITHUB_TOKEN=x\n")
    server = build_server(service, environ={"MCP_ENV_FILE": str(env_file)}, known_variables={"GITHUB_TOKEN"})
    assert server.service.name == "demo"


def test_env_file_lines_that_are_not_assignments_are_reported_with_their_line(tmp_path):
    env_file = tmp_path / "sse.env"
    env_file.write_text("DEMO_GREETING=x\nthis is not a setting\n")
    with pytest.raises(SettingsError, match=r"sse.env:2"):
        read_env_file(env_file)


def test_a_missing_env_file_is_fine(tmp_path):
    assert read_env_file(tmp_path / "absent.env") == {}


def test_serve_command_exits_with_the_message_on_bad_settings():
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "MCP_ENV_FILE": os.devnull,
        "MCP_PORT": str(free_port()),
        "MCP_MAX_BODY_BYTES": "huge",
    }
    result = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "serve", "filesystem"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "MCP_MAX_BODY_BYTES='huge'" in result.stderr
