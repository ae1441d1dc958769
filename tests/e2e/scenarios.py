"""How each of the five services is started for the end-to-end tests, and one tool call that proves it works.

A :class:`Scenario` prepares a service's backend on loopback (a directory, a page server, PostgreSQL, the
GitHub stand-in), returns the environment for ``mcp-sse serve NAME`` and a :class:`ToolProbe`: one tool
call whose result can only be right if the call really reached the service and its backend (a file's
unique content, a page's unique marker, a row of a table, the stand-in's repository description, this
host's name).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

E2E_TOKEN = "secret-token"
"""The bearer token every service under test requires (``MCP_AUTH_TOKENS``)."""

SERVICE_NAMES = ("postgres", "fetch", "filesystem", "github", "monitoring")


@dataclass(frozen=True)
class ToolProbe:
    """One tool call, the ``marker`` its text block must carry (what a model or mcpo reads), and a check of
    its structured result (by default: the marker is in it too)."""

    tool: str
    arguments: dict[str, Any]
    marker: str
    description: str
    check_structured: Callable[[dict[str, Any]], None] | None = None

    def check(self, structured: dict[str, Any]) -> None:
        if self.check_structured is not None:
            self.check_structured(structured)
        else:
            assert self.marker in json.dumps(structured, ensure_ascii=False), (self.marker, structured)

    def check_text(self, text: str) -> None:
        assert self.marker in text, (self.marker, text[:2000])


@dataclass
class Prepared:
    """A service's environment and its probe, once its backend is running."""

    env: dict[str, str]
    probe: ToolProbe
    notes: list[str] = field(default_factory=list)


Prepare = Callable[[Path, ExitStack], Prepared]


def prepare_filesystem(workdir: Path, stack: ExitStack) -> Prepared:
    root = workdir / "files"
    root.mkdir()
    marker = f"written for the end-to-end test {uuid.uuid4().hex}"
    (root / "notes.txt").write_text(marker + "\n", encoding="utf-8")

    def check(structured: dict[str, Any]) -> None:
        assert structured["content"] == marker + "\n", structured

    probe = ToolProbe(
        "read_file", {"path": str(root / "notes.txt")}, marker, "reads a file seeded with a uuid", check
    )
    return Prepared({"ALLOWED_PATHS": f"{root}:rw"}, probe)


def prepare_monitoring(workdir: Path, stack: ExitStack) -> Prepared:
    hostname = socket.gethostname()

    def check(structured: dict[str, Any]) -> None:
        assert structured["hostname"] == hostname, structured
        assert structured["cpu"], structured

    probe = ToolProbe("get_system_metrics", {}, hostname, "reports this host's name", check)
    return Prepared({}, probe)


def prepare_github(workdir: Path, stack: ExitStack) -> Prepared:
    """The GitHub API is unreachable here: the service talks to the github tests' local stand-in."""
    from harness.fake_github import FakeGitHub
    from tests.support.servers import run_app

    token = f"e2e-{uuid.uuid4().hex[:12]}"
    fake = FakeGitHub(valid_tokens={token})
    fake.reset()
    url = stack.enter_context(run_app(fake.app()))
    probe = ToolProbe(
        "get_repository",
        {"repo": "octo-org/hello-world"},
        "This your first repo!",
        "describes a repository served by the GitHub stand-in",
    )
    return Prepared({"GITHUB_TOKEN": token, "GITHUB_API_URL": url}, probe)


def prepare_fetch(workdir: Path, stack: ExitStack) -> Prepared:
    from tests.e2e.pages import serve_marker_page

    page_url, marker = stack.enter_context(serve_marker_page())
    probe = ToolProbe("fetch", {"url": page_url}, marker, "fetches a loopback page with a uuid")
    return Prepared({"FETCH_ALLOWED_HOSTS": "127.0.0.1"}, probe)


def prepare_postgres(workdir: Path, stack: ExitStack) -> Prepared:
    from tests.e2e.database import running_database

    database_url, marker = stack.enter_context(running_database())
    probe = ToolProbe(
        "execute_sql",
        {"query": "SELECT note FROM e2e_notes ORDER BY id"},
        marker,
        "reads a row seeded with a uuid from a real PostgreSQL",
    )
    return Prepared({"DATABASE_URL": database_url}, probe)


PREPARERS: dict[str, Prepare] = {
    "postgres": prepare_postgres,
    "fetch": prepare_fetch,
    "filesystem": prepare_filesystem,
    "github": prepare_github,
    "monitoring": prepare_monitoring,
}


def service_written(name: str) -> bool:
    """True once ``services/<name>/service.py`` exists (the services are written in parallel)."""
    return importlib.util.find_spec(f"services.{name}.service") is not None
