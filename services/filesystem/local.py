"""Embedded defaults for ``mcp-sse up``: serve ``./workspace`` read-write unless ALLOWED_PATHS is set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from libmcp.config import DEFAULT_ENV_FILE, read_env_file


def prepare(env: dict[str, str]) -> Callable[[], None] | None:
    """Create ``./workspace`` and point ALLOWED_PATHS at it, unless the environment or env file sets it."""
    if "ALLOWED_PATHS" in env:
        return None
    if "ALLOWED_PATHS" in read_env_file(env.get("MCP_ENV_FILE", DEFAULT_ENV_FILE)):
        return None
    workspace = Path("workspace").resolve()
    workspace.mkdir(exist_ok=True)
    env["ALLOWED_PATHS"] = f"{workspace}:rw"
    return None
