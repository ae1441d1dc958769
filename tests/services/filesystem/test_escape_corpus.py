"""The sandbox against a corpus of escape attempts, each through a real server over /rpc.

Every attempt must come back as an ``isError`` result naming the path and the reason, must not leak the
secret kept outside the roots, and must leave everything outside the read-write root exactly as it was
(types, inodes, link counts, sizes, mtimes and contents, the read-only root included).
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.filesystem.sandbox import show
from tests.services.filesystem.conftest import SECRET, FsClient, Tree

Setup = Callable[[Tree], None]


@dataclass(frozen=True)
class Attempt:
    id: str
    tool: str
    args: dict[str, Any]
    reason: str
    setup: Setup | None = None
    names: str = "path"
    absent: tuple[str, ...] = field(default_factory=tuple)


def link(name: str, target: str) -> Setup:
    """A symbolic link at ``rw/name``; ``target`` may use {rw}, {ro}, {outside}."""

    def make(tree: Tree) -> None:
        path = tree.rw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(fill(target, tree), path)

    return make


def steps(*setups: Setup) -> Setup:
    def make(tree: Tree) -> None:
        for setup in setups:
            setup(tree)

    return make


def hard_link(root: str) -> Setup:
    def make(tree: Tree) -> None:
        os.link(tree.outside / "secret.txt", getattr(tree, root) / "hard_secret")

    return make


def device(tree: Tree) -> None:
    os.mknod(tree.rw / "devzero", stat.S_IFCHR | 0o666, os.makedev(1, 5))


def fifo(tree: Tree) -> None:
    os.mkfifo(tree.rw / "fifo")


def unix_socket(tree: Tree) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree.rw / "sock"))


def fill(value: Any, tree: Tree) -> Any:
    if isinstance(value, str):
        return value.format(rw=tree.rw, ro=tree.ro, outside=tree.outside, base=tree.base)
    return value


LONG_NAME = "n" * 256
LONG_UTF8_NAME = "é" * 128  # 128 characters, 256 bytes: the limit counts bytes
LONG_PATH = "a/" * 2049
OUT = "'..' leads outside the root"
OUTSIDE_ROOTS = "is outside the allowed roots"
MISSING = "does not exist"
POINTS_OUT = "points outside the root"

ATTEMPTS = [
    # Traversal with ..
    Attempt("dotdot-read", "read_file", {"path": "../../outside/secret.txt"}, OUT),
    Attempt("dotdot-deep-read", "read_file", {"path": "sub/../../../outside/secret.txt"}, OUT),
    Attempt("dotdot-dots-read", "read_file", {"path": "./././../outside/secret.txt"}, OUT),
    Attempt("dotdot-write", "write_file", {"path": "../escape.txt", "content": "x"}, OUT),
    Attempt(
        "dotdot-write-parents",
        "write_file",
        {"path": "sub/../../escape/escape.txt", "content": "x", "create_parents": True},
        OUT,
    ),
    Attempt("dotdot-mkdir", "create_directory", {"path": "../escape_dir"}, OUT),
    Attempt("dotdot-list", "list_directory", {"path": ".."}, OUT),
    Attempt("dotdot-info", "get_file_info", {"path": "sub/../.."}, OUT),
    Attempt("absolute-then-dotdot", "read_file", {"path": "{rw}/../../outside/secret.txt"}, OUT),
    Attempt("dotdot-in-ro-root", "read_file", {"path": "{ro}/../../outside/secret.txt"}, OUT),
    # Encoded and look-alike forms are plain names, never decoded
    Attempt("percent-encoded", "read_file", {"path": "%2e%2e/%2e%2e/outside/secret.txt"}, MISSING),
    Attempt("percent-encoded-slash", "read_file", {"path": "..%2f..%2foutside%2fsecret.txt"}, MISSING),
    Attempt("double-encoded", "read_file", {"path": "%252e%252e/%252e%252e/outside/secret.txt"}, MISSING),
    Attempt(
        "overlong-utf8-text", "read_file", {"path": "%c0%ae%c0%ae/%c0%ae%c0%ae/outside/secret.txt"}, MISSING
    ),
    Attempt("fullwidth-dots", "read_file", {"path": "\uff0e\uff0e/\uff0e\uff0e/outside/secret.txt"}, MISSING),
    Attempt("two-dot-leader", "read_file", {"path": "\u2025/\u2025/outside/secret.txt"}, MISSING),
    Attempt(
        "one-dot-leaders", "read_file", {"path": "\u2024\u2024/\u2024\u2024/outside/secret.txt"}, MISSING
    ),
    Attempt("backslashes", "read_file", {"path": "..\\..\\outside\\secret.txt"}, MISSING),
    Attempt("three-dots", "read_file", {"path": ".../outside/secret.txt"}, MISSING),
    Attempt("encoded-write", "write_file", {"path": "%2e%2e/escape.txt", "content": "x"}, MISSING),
    # Absolute paths outside the roots
    Attempt("etc-passwd", "read_file", {"path": "/etc/passwd"}, OUTSIDE_ROOTS),
    Attempt("double-slash", "read_file", {"path": "//etc/passwd"}, OUTSIDE_ROOTS),
    Attempt("outside-absolute-read", "read_file", {"path": "{outside}/secret.txt"}, OUTSIDE_ROOTS),
    Attempt(
        "outside-absolute-write",
        "write_file",
        {"path": "{outside}/escape.txt", "content": "x"},
        OUTSIDE_ROOTS,
    ),
    Attempt(
        "etc-write",
        "write_file",
        {"path": "/etc/mcp-sse-escape-test", "content": "x"},
        OUTSIDE_ROOTS,
        absent=("/etc/mcp-sse-escape-test",),
    ),
    Attempt("root-prefix-sibling", "read_file", {"path": "{rw}_evil/secret.txt"}, OUTSIDE_ROOTS),
    Attempt("list-filesystem-root", "list_directory", {"path": "/"}, OUTSIDE_ROOTS),
    Attempt("mkdir-outside", "create_directory", {"path": "{outside}/escape_dir"}, OUTSIDE_ROOTS),
    Attempt("home-tilde", "read_file", {"path": "~/.bashrc"}, "'~' is not expanded"),
    Attempt("home-tilde-user", "read_file", {"path": "~root/.ssh/id_rsa"}, "'~' is not expanded"),
    # Devices and /proc
    Attempt("dev-zero", "read_file", {"path": "/dev/zero"}, OUTSIDE_ROOTS),
    Attempt("proc-environ", "read_file", {"path": "/proc/self/environ"}, OUTSIDE_ROOTS),
    Attempt("proc-root", "read_file", {"path": "/proc/self/root/etc/passwd"}, OUTSIDE_ROOTS),
    Attempt("proc-cwd", "list_directory", {"path": "/proc/self/cwd"}, OUTSIDE_ROOTS),
    Attempt(
        "device-node-read",
        "read_file",
        {"path": "devzero"},
        "character_device, not a regular file",
        setup=device,
    ),
    Attempt(
        "device-node-write",
        "write_file",
        {"path": "devzero", "content": "x"},
        "character_device, not a regular file",
        setup=device,
    ),
    Attempt("fifo-read", "read_file", {"path": "fifo"}, "fifo, not a regular file", setup=fifo),
    Attempt(
        "fifo-write", "write_file", {"path": "fifo", "content": "x"}, "fifo, not a regular file", setup=fifo
    ),
    Attempt("socket-read", "read_file", {"path": "sock"}, "socket, not a regular file", setup=unix_socket),
    # Symbolic links
    Attempt(
        "link-dir-out-read",
        "read_file",
        {"path": "link_out/secret.txt"},
        POINTS_OUT,
        setup=link("link_out", "{outside}"),
    ),
    Attempt(
        "link-dir-out-write",
        "write_file",
        {"path": "link_out/escape.txt", "content": "x"},
        POINTS_OUT,
        setup=link("link_out", "{outside}"),
    ),
    Attempt(
        "link-dir-out-mkdir",
        "create_directory",
        {"path": "link_out/escape_dir"},
        POINTS_OUT,
        setup=link("link_out", "{outside}"),
    ),
    Attempt(
        "link-dir-out-list",
        "list_directory",
        {"path": "link_out"},
        POINTS_OUT,
        setup=link("link_out", "{outside}"),
    ),
    Attempt(
        "link-dir-out-search",
        "search_files",
        {"path": "link_out", "pattern": "**"},
        POINTS_OUT,
        setup=link("link_out", "{outside}"),
    ),
    Attempt(
        "link-file-out-read",
        "read_file",
        {"path": "link_file"},
        POINTS_OUT,
        setup=link("link_file", "{outside}/secret.txt"),
    ),
    Attempt(
        "link-file-out-write",
        "write_file",
        {"path": "link_file", "content": "overwritten"},
        POINTS_OUT,
        setup=link("link_file", "{outside}/secret.txt"),
    ),
    Attempt(
        "link-file-out-info",
        "get_file_info",
        {"path": "link_file"},
        POINTS_OUT,
        setup=link("link_file", "{outside}/secret.txt"),
    ),
    Attempt(
        "link-relative-dotdot",
        "read_file",
        {"path": "link_rel"},
        "through the symbolic link",
        setup=link("link_rel", "../../outside/secret.txt"),
    ),
    Attempt(
        "link-to-dotdot",
        "read_file",
        {"path": "up/outside/secret.txt"},
        "through the symbolic link",
        setup=link("up", ".."),
    ),
    Attempt(
        "link-to-root-then-dotdot",
        "read_file",
        {"path": "sub/to_root/../outside/secret.txt"},
        OUT,
        setup=link("sub/to_root", "{rw}"),
    ),
    Attempt(
        "link-chain",
        "read_file",
        {"path": "chain1/secret.txt"},
        POINTS_OUT,
        setup=steps(link("chain1", "chain2"), link("chain2", "sub/chain3"), link("sub/chain3", "{outside}")),
    ),
    Attempt(
        "link-loop",
        "read_file",
        {"path": "loop_a"},
        "more than 40 symbolic links",
        setup=steps(link("loop_a", "loop_b"), link("loop_b", "loop_a")),
    ),
    Attempt(
        "link-into-ro-root-write",
        "write_file",
        {"path": "link_ro/escape.txt", "content": "x"},
        POINTS_OUT,
        setup=link("link_ro", "{ro}"),
    ),
    Attempt(
        "link-to-proc-root",
        "read_file",
        {"path": "proc_link/etc/passwd"},
        POINTS_OUT,
        setup=link("proc_link", "/proc/self/root"),
    ),
    Attempt(
        "link-to-prefix-sibling",
        "read_file",
        {"path": "evil/secret.txt"},
        POINTS_OUT,
        setup=link("evil", "{rw}_evil"),
    ),
    Attempt(
        "move-into-link-out",
        "move_file",
        {"source": "notes.txt", "destination": "link_out/notes.txt"},
        POINTS_OUT,
        setup=link("link_out", "{outside}"),
        names="destination",
    ),
    # Hard links to a file outside the roots
    Attempt("hard-link-read", "read_file", {"path": "hard_secret"}, "hard links", setup=hard_link("rw")),
    Attempt(
        "hard-link-write",
        "write_file",
        {"path": "hard_secret", "content": "overwritten"},
        "hard links",
        setup=hard_link("rw"),
    ),
    Attempt(
        "hard-link-in-ro-root", "read_file", {"path": "{ro}/hard_secret"}, "hard links", setup=hard_link("ro")
    ),
    # NUL bytes and over-long names
    Attempt("nul-read", "read_file", {"path": "notes.txt\x00.png"}, "contains a NUL byte"),
    Attempt("nul-write", "write_file", {"path": "escape\x00.txt", "content": "x"}, "contains a NUL byte"),
    Attempt("nul-absolute", "read_file", {"path": "/etc/passwd\x00{rw}/notes.txt"}, "contains a NUL byte"),
    Attempt("name-too-long-read", "read_file", {"path": LONG_NAME}, "(NAME_MAX)"),
    Attempt("name-too-long-write", "write_file", {"path": LONG_NAME, "content": "x"}, "(NAME_MAX)"),
    Attempt("name-too-long-utf8", "write_file", {"path": LONG_UTF8_NAME, "content": "x"}, "(NAME_MAX)"),
    Attempt(
        "path-too-long",
        "write_file",
        {"path": LONG_PATH + "x", "content": "x", "create_parents": True},
        "(PATH_MAX)",
    ),
    # Read-only root
    Attempt("ro-replace", "write_file", {"path": "{ro}/readme.txt", "content": "changed"}, "is read-only"),
    Attempt("ro-create", "write_file", {"path": "{ro}/escape.txt", "content": "x"}, "is read-only"),
    Attempt("ro-mkdir", "create_directory", {"path": "{ro}/escape_dir"}, "is read-only"),
    Attempt(
        "ro-move-out",
        "move_file",
        {"source": "{ro}/readme.txt", "destination": "{rw}/stolen.txt"},
        "is read-only",
        names="source",
    ),
    Attempt(
        "ro-move-in",
        "move_file",
        {"source": "{rw}/notes.txt", "destination": "{ro}/notes.txt"},
        "is read-only",
        names="destination",
    ),
    # Moves across the sandbox boundary
    Attempt(
        "move-out-of-root",
        "move_file",
        {"source": "notes.txt", "destination": "{outside}/notes.txt"},
        OUTSIDE_ROOTS,
        names="destination",
    ),
    Attempt(
        "move-into-root-from-outside",
        "move_file",
        {"source": "{outside}/secret.txt", "destination": "stolen.txt"},
        OUTSIDE_ROOTS,
        names="source",
    ),
    Attempt(
        "move-dotdot",
        "move_file",
        {"source": "notes.txt", "destination": "../notes.txt"},
        OUT,
        names="destination",
    ),
    Attempt(
        "move-root-itself",
        "move_file",
        {"source": "{rw}", "destination": "{rw}/moved"},
        "it cannot be moved",
        names="source",
    ),
    # Search patterns that would leave the directory searched
    Attempt("search-dotdot-glob", "search_files", {"pattern": "../**"}, "contains '..'"),
    Attempt("search-dotdot-inner", "search_files", {"pattern": "**/../../outside/*"}, "contains '..'"),
    Attempt("search-absolute", "search_files", {"pattern": "/etc/*"}, "must be relative"),
    Attempt("search-home", "search_files", {"pattern": "~/*"}, "must be relative"),
    Attempt("search-dotdot-path", "search_files", {"path": "..", "pattern": "**"}, OUT),
    Attempt(
        "search-exclude-dotdot",
        "search_files",
        {"pattern": "*", "exclude_patterns": ["../x"]},
        "contains '..'",
    ),
]


def test_the_corpus_is_large_and_ids_are_unique() -> None:
    assert len(ATTEMPTS) >= 40
    assert len({attempt.id for attempt in ATTEMPTS}) == len(ATTEMPTS)


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[attempt.id for attempt in ATTEMPTS])
def test_escape_attempt_is_refused_and_changes_nothing_outside(
    attempt: Attempt, tree: Tree, fs: FsClient
) -> None:
    if attempt.setup is not None:
        attempt.setup(tree)
    before = tree.snapshot()
    arguments = {key: fill(value, tree) for key, value in attempt.args.items()}

    text = fs.error(attempt.tool, **arguments)

    assert attempt.reason in text
    named = arguments.get(attempt.names, ".")
    assert show(named)[:60] in text, f"the message does not name the path: {text}"
    assert SECRET not in text
    assert tree.snapshot() == before
    for path in attempt.absent:
        assert not Path(path).exists()
