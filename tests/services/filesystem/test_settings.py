"""ALLOWED_PATHS and the limits: parsing, start-up failures naming the variable, and `mcp-sse up` defaults."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import yaml

from libmcp import SettingsError, build_server
from libmcp.config import load_settings
from services.filesystem import local
from services.filesystem.service import service
from services.filesystem.settings import FilesystemSettings
from tests.support.servers import REPO_ROOT, ServiceProcess


def test_roots_are_parsed_with_their_modes_and_no_suffix_means_read_only(tmp_path: Path) -> None:
    settings = load_settings(
        FilesystemSettings, environ={"ALLOWED_PATHS": f"{tmp_path}/a:ro, {tmp_path}/b:rw ,{tmp_path}/c"}
    )
    assert [(root.path, root.mode) for root in settings.allowed_paths] == [
        (f"{tmp_path}/a", "ro"),
        (f"{tmp_path}/b", "rw"),
        (f"{tmp_path}/c", "ro"),
    ]


def test_a_root_given_through_a_symlink_is_resolved_but_still_accepted_as_written(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    (root,) = FilesystemSettings.model_validate({"allowed_paths": f"{tmp_path}/alias:rw"}).allowed_paths
    assert (root.path, root.configured) == (str(tmp_path / "real"), str(tmp_path / "alias"))


def test_relative_roots_are_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (root,) = FilesystemSettings.model_validate({}).allowed_paths
    assert (root.path, root.writable) == (str(tmp_path / "workspace"), True)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/srv/data:rx", "the mode after ':' must be ro or rw"),
        ("/srv/data:RW", "the mode after ':' must be ro or rw"),
        ("", "at least one root is needed"),
        (" , ,", "at least one root is needed"),
        (":rw", "the path is empty"),
        ("/srv/a:b:rw", "paths may not contain ':'"),
        ("/srv/data:ro,/srv/data/:rw", "the same directory as '/srv/data:ro'"),
    ],
)
def test_malformed_allowed_paths_fail_naming_the_variable(value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(FilesystemSettings, environ={"ALLOWED_PATHS": value})
    assert "ALLOWED_PATHS=" in str(caught.value)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    "variable",
    [
        "FILESYSTEM_MAX_READ_BYTES",
        "FILESYSTEM_MAX_WRITE_BYTES",
        "FILESYSTEM_MAX_SEARCH_RESULTS",
        "FILESYSTEM_SEARCH_MAX_ENTRIES",
        "FILESYSTEM_LIST_MAX_ENTRIES",
        "FILESYSTEM_MAX_PATTERN_LENGTH",
        "FILESYSTEM_MAX_GLOB_SEGMENTS",
        "FILESYSTEM_MAX_GLOB_DOUBLE_STARS",
        "FILESYSTEM_MAX_GLOB_WILDCARDS",
        "FILESYSTEM_MAX_GLOB_ALTERNATIVES",
        "FILESYSTEM_WORKER_THREADS",
    ],
)
def test_limits_must_be_positive_integers(variable: str) -> None:
    for value in ("0", "-1", "lots"):
        with pytest.raises(SettingsError, match=f"{variable}="):
            load_settings(FilesystemSettings, environ={variable: value})


def test_variables_and_defaults_match_the_registry() -> None:
    registry = yaml.safe_load((REPO_ROOT / "config" / "services.yaml").read_text())
    declared = registry["services"]["filesystem"]["env"]
    fields = FilesystemSettings.model_fields
    assert {name.upper() for name in fields} == set(declared)
    for name, field in fields.items():
        assert str(field.default) == declared[name.upper()]["default"], name


def test_a_malformed_root_stops_start_up_with_a_message_naming_the_variable() -> None:
    """What `mcp-sse serve filesystem` runs before serving (build_server), with ALLOWED_PATHS malformed."""
    with pytest.raises(SettingsError) as caught:
        build_server(service, environ={"ALLOWED_PATHS": "/srv/data:rx", "MCP_ENV_FILE": os.devnull})
    assert "ALLOWED_PATHS='/srv/data:rx'" in str(caught.value)
    assert "the mode after ':' must be ro or rw" in str(caught.value)


def test_mcp_sse_serve_filesystem_serves_the_configured_root(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello from a child process\n")
    with ServiceProcess("filesystem", env={"ALLOWED_PATHS": f"{tmp_path}:ro"}) as process:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "read_file", "arguments": {"path": "hello.txt"}},
        }
        result = httpx.post(f"{process.url}/rpc", json=body, timeout=10).json()["result"]
        health = httpx.get(f"{process.url}/health", timeout=10).json()
    assert result["structuredContent"]["content"] == "hello from a child process\n"
    assert health["checks"]["roots"]["status"] == "ok"


# mcp-sse up: services/filesystem/local.py ------------------------------------------------------


def test_up_creates_a_workspace_and_serves_it_read_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"MCP_ENV_FILE": os.devnull}
    assert local.prepare(env) is None
    assert (tmp_path / "workspace").is_dir()
    assert env["ALLOWED_PATHS"] == f"{tmp_path / 'workspace'}:rw"
    (root,) = load_settings(FilesystemSettings, environ=env).allowed_paths
    assert (root.path, root.mode) == (str(tmp_path / "workspace"), "rw")


def test_up_leaves_allowed_paths_alone_when_the_environment_or_env_file_sets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env_file = tmp_path / "sse.env"
    env_file.write_text("ALLOWED_PATHS=/srv/data:ro\n")
    from_environment = {"ALLOWED_PATHS": "/srv/x:ro", "MCP_ENV_FILE": os.devnull}
    from_file = {"MCP_ENV_FILE": str(env_file)}
    local.prepare(from_environment)
    local.prepare(from_file)
    assert from_environment["ALLOWED_PATHS"] == "/srv/x:ro"
    assert "ALLOWED_PATHS" not in from_file
    assert not (tmp_path / "workspace").exists()
