"""The sandbox's pure parts: lexical checks, root matching and the glob translation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.filesystem.globs import Glob, GlobError, GlobLimits, expand_braces
from services.filesystem.sandbox import Root, Sandbox, SandboxError, rename_no_replace


def sandbox_of(*roots: tuple[str, bool]) -> Sandbox:
    return Sandbox(tuple(Root(path=path, writable=writable, configured=path) for path, writable in roots))


def test_relative_paths_start_at_the_first_root() -> None:
    sandbox = sandbox_of(("/srv/a", True), ("/srv/b", False))
    root, parts = sandbox.split("./x//y/./z")
    assert (root.path, parts) == ("/srv/a", ["x", "y", "z"])


def test_absolute_paths_belong_to_the_longest_root_containing_them() -> None:
    sandbox = sandbox_of(("/srv", True), ("/srv/data", False))
    assert sandbox.split("/srv/data/x")[0].path == "/srv/data"
    assert sandbox.split("/srv/other/x")[0].path == "/srv"
    assert sandbox.split("/srv")[1] == []


def test_a_root_name_prefix_is_not_a_root() -> None:
    sandbox = sandbox_of(("/srv/data", True))
    with pytest.raises(SandboxError, match="is outside the allowed roots"):
        sandbox.split("/srv/database/x")


def test_lone_surrogates_are_refused() -> None:
    """JSON parsers may hand these over (libmcp's refuses them earlier); the sandbox refuses them too."""
    with pytest.raises(SandboxError, match="not valid Unicode"):
        sandbox_of(("/srv", True)).split("\udcae\udcae/x")


def test_component_limit_counts_bytes_not_characters() -> None:
    sandbox = sandbox_of(("/srv", True))
    assert sandbox.split("é" * 127)[1] == ["é" * 127]
    with pytest.raises(SandboxError, match="component of 256 bytes"):
        sandbox.split("é" * 128)


def test_a_missing_root_is_reported_with_its_path(tmp_path: Path) -> None:
    sandbox = sandbox_of((str(tmp_path / "gone"), True))
    with pytest.raises(SandboxError, match="is not available: does not exist"):
        sandbox.locate("x")


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.py", ["a.py", ".hidden.py"], ["src/a.py", "a.pyc"]),
        ("**/*.py", ["a.py", "src/a.py", "src/deep/a.py"], ["a.txt", "src/a.pyc"]),
        ("src/**", ["src/a", "src/deep/b"], ["src", "other/a"]),
        ("src/**/test_*.py", ["src/test_a.py", "src/x/y/test_b.py"], ["test_a.py", "src/a_test.py"]),
        ("file?.txt", ["file1.txt"], ["file10.txt", "file/.txt"]),
        ("[ab]*.md", ["a.md", "bx.md"], ["c.md"]),
        ("[!ab]*.md", ["c.md"], ["a.md", "x/c.md"]),
        ("*.{js,ts}", ["a.js", "b.ts"], ["c.py", "d/a.js"]),
        ("a+b(c).txt", ["a+b(c).txt"], ["aab(c).txt"]),
        ("[a-c]?", ["b1", "c-"], ["d1", "b"]),
        ("**", ["a", "a/b/c"], []),
    ],
)
def test_globs_match_relative_paths(pattern: str, matches: list[str], misses: list[str]) -> None:
    glob = Glob(pattern)
    assert all(glob.matches(path) for path in matches), pattern
    assert not any(glob.matches(path) for path in misses), pattern


def test_hostile_patterns_match_in_bounded_time() -> None:
    """Backtracking regular expressions take exponential time on these; the matcher does not.

    The complexity limits are lifted here: the matcher itself must stay polynomial (and iterative)."""
    unlimited = GlobLimits(max_segments=1000, max_double_stars=1000, max_wildcards=1000)
    name = "a" * 255
    assert not Glob("*a" * 60 + "*b", unlimited).matches(name)
    assert not Glob("/".join(["**"] * 40) + "/b", unlimited).matches("/".join(["a"] * 60))


def test_brace_alternatives_are_capped() -> None:
    assert expand_braces("{a,b}{c,d}") == ["ac", "bc", "ad", "bd"]
    with pytest.raises(GlobError, match="more than 64 alternatives"):
        Glob("{a,b,c,d}{a,b,c,d}{a,b,c,d}{a,b}")


def test_rename_no_replace_never_replaces_an_existing_destination(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            rename_no_replace(fd, "a", fd, "b")
        rename_no_replace(fd, "a", fd, "c")
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["b", "c"]
    assert (tmp_path / "b").read_text() == "b" and (tmp_path / "c").read_text() == "a"


# The iterative matcher and brace expansion agree with the plain recursive definitions --------------


def recursive_match(pattern: str, path: str) -> bool:
    """The definition: ``**`` takes zero or more names (one or more at the end), others one name each."""
    segments = [segment for segment in pattern.split("/") if segment not in ("", ".")]
    parts = [part for part in path.split("/") if part]

    def match(s: int, p: int) -> bool:
        if s == len(segments):
            return p == len(parts)
        if segments[s] == "**":
            first = p + 1 if s == len(segments) - 1 else p
            return any(match(s + 1, q) for q in range(first, len(parts) + 1))
        return p < len(parts) and Glob(segments[s]).matches(parts[p]) and match(s + 1, p + 1)

    return match(0, 0)


def recursive_braces(pattern: str) -> list[str]:
    start = pattern.find("{")
    end = pattern.find("}", start + 1)
    if start < 0 or end < 0 or "{" in pattern[start + 1 : end]:
        return [pattern]
    head, options, tail = pattern[:start], pattern[start + 1 : end].split(","), pattern[end + 1 :]
    return [head + option + rest for rest in recursive_braces(tail) for option in options]


names = st.text(alphabet="ab.", min_size=1, max_size=4)
segments = st.one_of(st.just("**"), st.just("*"), st.text(alphabet="ab*?", min_size=1, max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.lists(segments, min_size=1, max_size=6), st.lists(names, max_size=6))
def test_the_matcher_agrees_with_the_recursive_definition(pattern: list[str], path: list[str]) -> None:
    glob = Glob("/".join(pattern), GlobLimits(max_double_stars=6, max_wildcards=64))
    assert glob.matches("/".join(path)) == recursive_match("/".join(pattern), "/".join(path))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab{},/", max_size=16))
def test_brace_expansion_agrees_with_the_recursive_definition(pattern: str) -> None:
    expected = recursive_braces(pattern)
    if len(expected) > 64:
        with pytest.raises(GlobError):
            expand_braces(pattern)
    else:
        assert expand_braces(pattern) == expected
