"""Fixtures for the filesystem service: a tree with roots and an outside area, and a served instance.

Layout under ``tmp_path``::

    roots/rw/        read-write root (first root: relative paths start here)
        notes.txt, sub/inner.txt
    roots/ro/        read-only root
        readme.txt
    roots/rw_evil/   a sibling whose name starts like the rw root (not a root)
    outside/         never to be read, created or changed
        secret.txt (holds SECRET), dir/deep.txt
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from libmcp import Server, ServerSettings
from services.filesystem.service import service
from services.filesystem.settings import FilesystemSettings
from tests.support.servers import run_server

SECRET = "TOP-SECRET-5f2c9a"


@dataclass
class Tree:
    base: Path
    rw: Path
    ro: Path
    outside: Path

    @property
    def allowed_paths(self) -> str:
        return f"{self.rw}:rw,{self.ro}:ro"

    def snapshot(self) -> dict[str, tuple[Any, ...]]:
        """Everything under ``base`` except the read-write root: type, inode, links, size, mtime, content."""
        return snapshot(self.base, skip=self.rw)


def snapshot(base: Path, skip: Path | None = None) -> dict[str, tuple[Any, ...]]:
    """Each entry's identity and content, so any change (creation, write, rename, chmod) shows up."""
    result: dict[str, tuple[Any, ...]] = {}
    for directory, dirnames, filenames in os.walk(base, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(directory, name)
            if skip is not None and path == skip:
                continue
            info = path.lstat()
            detail: Any = None
            if stat.S_ISREG(info.st_mode):
                detail = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                detail = os.readlink(path)
            result[str(path.relative_to(base))] = (
                info.st_mode,
                info.st_ino,
                info.st_nlink,
                info.st_size,
                info.st_mtime_ns,
                detail,
            )
        if skip is not None:
            dirnames[:] = [name for name in dirnames if Path(directory, name) != skip]
    return result


def build_tree(base: Path) -> Tree:
    """Create the layout above under ``base`` (which must be empty)."""
    rw = base / "roots" / "rw"
    ro = base / "roots" / "ro"
    outside = base / "outside"
    for directory in (rw / "sub", ro, outside / "dir", base / "roots" / "rw_evil"):
        directory.mkdir(parents=True)
    (rw / "notes.txt").write_text("line 1\nline 2\nline 3\n")
    (rw / "sub" / "inner.txt").write_text("inner\n")
    (ro / "readme.txt").write_text("read me\n")
    (outside / "secret.txt").write_text(f"{SECRET}\n")
    (outside / "dir" / "deep.txt").write_text(f"deep {SECRET}\n")
    (base / "roots" / "rw_evil" / "secret.txt").write_text(f"{SECRET}\n")
    return Tree(base=base, rw=rw, ro=ro, outside=outside)


def empty(base: Path) -> None:
    """Remove everything under ``base`` (links are removed, never followed)."""
    for child in base.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@pytest.fixture(scope="module")
def shared_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("filesystem")


@pytest.fixture
def tree(shared_base: Path) -> Tree:
    """A fresh tree for each test, always at the same place (so one server per module can serve it)."""
    empty(shared_base)
    return build_tree(shared_base)


class FsClient:
    """Calls tools over plain JSON-RPC (``/rpc``) and returns the raw ``tools/call`` result."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)
        self.ids = 0

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        self.ids += 1
        body = {
            "jsonrpc": "2.0",
            "id": self.ids,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        # json.dumps escapes lone surrogates (\udcae), which a client may send and httpx cannot encode.
        response = self.http.post(
            "/rpc", content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        payload = response.json()
        assert "error" not in payload, payload
        result: dict[str, Any] = payload["result"]
        return result

    def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool that must succeed; returns its structured content."""
        result = self.call(tool, **arguments)
        assert result["isError"] is False, result["content"][0]["text"]
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    def error(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must fail with an isError result; returns its text."""
        result = self.call(tool, **arguments)
        assert result["isError"] is True, result
        text: str = result["content"][0]["text"]
        return text

    def close(self) -> None:
        self.http.close()


def settings_for(tree: Tree, **overrides: Any) -> FilesystemSettings:
    return FilesystemSettings.model_validate({"allowed_paths": tree.allowed_paths, **overrides})


@pytest.fixture
def serve_fs(
    serve_service: Callable[..., tuple[str, Server]], tree: Tree
) -> Iterator[Callable[..., FsClient]]:
    """``serve_fs(**settings)``: the filesystem service over ``tree`` on a loopback port, and a client."""
    clients: list[FsClient] = []

    def start(allowed_paths: str | None = None, **overrides: Any) -> FsClient:
        settings = FilesystemSettings.model_validate(
            {"allowed_paths": allowed_paths or tree.allowed_paths, **overrides}
        )
        url, _ = serve_service(service, settings)
        client = FsClient(url)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def shared_server(shared_base: Path) -> Iterator[FsClient]:
    """The service with default limits over the shared tree's roots, one per test module.

    Built from the same parts as the ``serve_service`` fixture, at module scope: stopping a uvicorn
    server takes a fifth of a second, which over a hundred tests would dominate this tier's run time.
    """
    roots = f"{shared_base / 'roots' / 'rw'}:rw,{shared_base / 'roots' / 'ro'}:ro"
    server = Server(
        service,
        FilesystemSettings.model_validate({"allowed_paths": roots}),
        ServerSettings.model_validate({}),
    )
    with run_server(server) as url:
        client = FsClient(url)
        yield client
        client.close()


@pytest.fixture
def fs(shared_server: FsClient, tree: Tree) -> FsClient:
    """The filesystem service over ``tree`` with default limits."""
    return shared_server
