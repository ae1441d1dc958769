"""Each filesystem tool through a real server (plain JSON-RPC on /rpc), on a real directory tree."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from services.filesystem.service import INLINE_READ_BYTES
from tests.services.filesystem.conftest import SECRET, FsClient, Tree

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# read_file -------------------------------------------------------------------------------------


def test_read_file_returns_the_whole_text_with_line_numbers(fs: FsClient, tree: Tree) -> None:
    result = fs.call("read_file", path="notes.txt")
    assert result["content"][0]["text"] == "line 1\nline 2\nline 3\n"
    assert result["structuredContent"] == {
        "path": str(tree.rw / "notes.txt"),
        "content": "line 1\nline 2\nline 3\n",
        "size_bytes": 21,
        "start_line": 1,
        "end_line": 3,
        "total_lines": 3,
    }


def test_read_file_accepts_absolute_paths_in_any_root(fs: FsClient, tree: Tree) -> None:
    assert fs.ok("read_file", path=str(tree.ro / "readme.txt"))["content"] == "read me\n"
    assert fs.ok("read_file", path=str(tree.rw / "sub" / "inner.txt"))["content"] == "inner\n"


def test_read_file_head_tail_and_line_range(fs: FsClient, tree: Tree) -> None:
    (tree.rw / "ten.txt").write_text("".join(f"{n}\n" for n in range(1, 11)))
    head = fs.ok("read_file", path="ten.txt", head=2)
    tail = fs.ok("read_file", path="ten.txt", tail=3)
    middle = fs.ok("read_file", path="ten.txt", start_line=4, end_line=6)
    from_line = fs.ok("read_file", path="ten.txt", start_line=9)
    assert (head["content"], head["start_line"], head["end_line"]) == ("1\n2\n", 1, 2)
    assert (tail["content"], tail["start_line"], tail["end_line"]) == ("8\n9\n10\n", 8, 10)
    assert (middle["content"], middle["start_line"], middle["end_line"]) == ("4\n5\n6\n", 4, 6)
    assert from_line["content"] == "9\n10\n"
    assert fs.ok("read_file", path="ten.txt", start_line=50)["content"] == ""


def test_read_file_tail_works_on_a_file_larger_than_the_read_cap(
    serve_fs: Callable[..., FsClient], tree: Tree
) -> None:
    fs = serve_fs(filesystem_max_read_bytes=1000)
    (tree.rw / "big.log").write_text("".join(f"entry {n:06d}\n" for n in range(20_000)))
    whole = fs.error("read_file", path="big.log")
    tail = fs.ok("read_file", path="big.log", tail=2)
    head = fs.ok("read_file", path="big.log", head=2)
    assert "FILESYSTEM_MAX_READ_BYTES=1000" in whole and "260000 bytes" in whole and "big.log" in whole
    assert tail["content"] == "entry 019998\nentry 019999\n"
    assert tail["start_line"] is None and tail["size_bytes"] == 260_000
    assert head["content"] == "entry 000000\nentry 000001\n"
    too_many = fs.error("read_file", path="big.log", head=500)
    assert "exceed FILESYSTEM_MAX_READ_BYTES=1000" in too_many


def test_read_file_reads_files_on_both_sides_of_the_inline_size(fs: FsClient, tree: Tree) -> None:
    """Files up to INLINE_READ_BYTES are read on the event loop, larger ones in a worker: same answers."""
    line = "é" * 40 + "\n"  # 81 bytes: multi-byte characters straddle every read boundary somewhere
    sizes = {"at.txt": INLINE_READ_BYTES, "over.txt": INLINE_READ_BYTES + 1, "big.txt": 300_001}
    for name, size in sizes.items():
        body = line * (size // len(line.encode()))
        (tree.rw / name).write_text(body + "x" * (size - len(body.encode())))
    for name, size in sizes.items():
        expected = (tree.rw / name).read_text()
        whole = fs.ok("read_file", path=name)
        assert (whole["content"], whole["size_bytes"]) == (expected, size)
        assert whole["total_lines"] == whole["end_line"] == expected.count("\n") + 1
        assert fs.ok("read_file", path=name, head=2)["content"] == line * 2
        tail = fs.ok("read_file", path=name, tail=2)
        assert tail["content"] == "".join(expected.splitlines(keepends=True)[-2:])


def test_read_file_leaves_no_descriptor_open(fs: FsClient, tree: Tree) -> None:
    """Reads that succeed or fail, inline or in a worker, close what they open (the server is in-process)."""
    (tree.rw / "big.txt").write_text("a\n" * INLINE_READ_BYTES)
    (tree.rw / "big.bin").write_bytes(b"a" * INLINE_READ_BYTES + b"\x00")
    (tree.rw / "small.bin").write_bytes(b"\xff\xfe")
    os.mkfifo(tree.rw / "fifo")
    (tree.rw / "linked.txt").write_text("linked\n")
    os.link(tree.rw / "linked.txt", tree.rw / "second_link")
    calls: list[dict[str, Any]] = [
        {"path": "notes.txt"},
        {"path": "notes.txt", "tail": 1},
        {"path": "big.txt"},
        {"path": "big.txt", "start_line": 5, "end_line": 6},
        {"path": "big.bin"},
        {"path": "small.bin"},
        {"path": "fifo"},
        {"path": "second_link"},
        {"path": "sub"},
        {"path": "missing.txt"},
    ]
    fs.call("read_file", path="notes.txt")  # the client's connection is open before counting
    before = len(os.listdir("/proc/self/fd"))
    outcomes = [fs.call("read_file", **arguments)["isError"] for _ in range(5) for arguments in calls]
    assert len(os.listdir("/proc/self/fd")) == before
    assert outcomes.count(False) == 5 * 4 and outcomes.count(True) == 5 * 6


def test_read_file_refuses_binary_and_non_utf8_files(fs: FsClient, tree: Tree) -> None:
    (tree.rw / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tree.rw / "latin1.txt").write_bytes("café".encode("latin-1"))
    assert "not a text file (NUL byte at offset 8)" in fs.error("read_file", path="image.png")
    assert "not UTF-8 text (invalid byte at offset 3)" in fs.error("read_file", path="latin1.txt")


def test_read_file_names_missing_files_and_directories(fs: FsClient) -> None:
    assert "missing.txt does not exist" in fs.error("read_file", path="missing.txt")
    assert "is a directory; use list_directory" in fs.error("read_file", path="sub")
    assert "is a directory" in fs.error("read_file", path=".")


def test_read_file_refuses_conflicting_selections(fs: FsClient) -> None:
    text = fs.error("read_file", path="notes.txt", head=1, tail=1)
    assert "use only one of head, tail or start_line/end_line" in text
    assert "end_line must not be smaller" in fs.error("read_file", path="notes.txt", start_line=3, end_line=2)
    assert "head: Input should be greater than or equal to 1" in fs.error(
        "read_file", path="notes.txt", head=0
    )


def test_symbolic_links_inside_the_root_are_followed(fs: FsClient, tree: Tree) -> None:
    os.symlink("sub/inner.txt", tree.rw / "relative_link")
    os.symlink(tree.rw / "sub", tree.rw / "absolute_link")
    os.symlink("../notes.txt", tree.rw / "sub" / "up_link")
    assert fs.ok("read_file", path="relative_link")["path"] == str(tree.rw / "sub" / "inner.txt")
    assert fs.ok("read_file", path="absolute_link/inner.txt")["content"] == "inner\n"
    assert fs.ok("read_file", path="sub/up_link")["content"].startswith("line 1")


# write_file ------------------------------------------------------------------------------------


def test_write_file_creates_then_replaces_keeping_the_mode(fs: FsClient, tree: Tree) -> None:
    created = fs.ok("write_file", path="new.txt", content="first\n")
    (tree.rw / "new.txt").chmod(0o600)
    replaced = fs.ok("write_file", path="new.txt", content="second, longer\n")
    assert created == {"path": str(tree.rw / "new.txt"), "bytes_written": 6, "created": True}
    assert replaced["created"] is False and replaced["bytes_written"] == 15
    assert (tree.rw / "new.txt").read_text() == "second, longer\n"
    assert stat.S_IMODE((tree.rw / "new.txt").stat().st_mode) == 0o600
    assert [name for name in os.listdir(tree.rw) if name.endswith(".tmp")] == []


def test_write_file_writes_unicode_as_utf8(fs: FsClient, tree: Tree) -> None:
    fs.ok("write_file", path="unicode.txt", content="naïve ☃ 日本\n")
    assert (tree.rw / "unicode.txt").read_bytes() == "naïve ☃ 日本\n".encode()
    assert fs.ok("read_file", path="unicode.txt")["content"] == "naïve ☃ 日本\n"


def test_write_file_creates_parents_only_when_asked(fs: FsClient, tree: Tree) -> None:
    refused = fs.error("write_file", path="a/b/c.txt", content="x")
    made = fs.ok("write_file", path="a/b/c.txt", content="x", create_parents=True)
    assert "a does not exist" in refused
    assert made["path"] == str(tree.rw / "a" / "b" / "c.txt")
    assert (tree.rw / "a" / "b" / "c.txt").read_text() == "x"


def test_write_file_refuses_content_over_the_cap(serve_fs: Callable[..., FsClient], tree: Tree) -> None:
    fs = serve_fs(filesystem_max_write_bytes=10)
    text = fs.error("write_file", path="big.txt", content="0123456789A")
    assert "content is 11 bytes, more than FILESYSTEM_MAX_WRITE_BYTES=10" in text
    assert not (tree.rw / "big.txt").exists()
    assert fs.ok("write_file", path="ok.txt", content="0123456789")["bytes_written"] == 10


def test_write_file_refuses_directories(fs: FsClient) -> None:
    assert "is a directory" in fs.error("write_file", path="sub", content="x")
    assert "is a directory" in fs.error("write_file", path=".", content="x")


def test_write_file_through_an_inside_symlink_replaces_its_target(fs: FsClient, tree: Tree) -> None:
    os.symlink("sub/inner.txt", tree.rw / "alias")
    result = fs.ok("write_file", path="alias", content="via alias\n")
    assert result["path"] == str(tree.rw / "sub" / "inner.txt")
    assert (tree.rw / "sub" / "inner.txt").read_text() == "via alias\n"
    assert os.readlink(tree.rw / "alias") == "sub/inner.txt"


# list_directory --------------------------------------------------------------------------------


def test_list_directory_reports_type_size_and_iso_mtime(fs: FsClient, tree: Tree) -> None:
    os.symlink("notes.txt", tree.rw / "link")
    os.utime(tree.rw / "notes.txt", (1_700_000_000, 1_700_000_000))
    listing = fs.ok("list_directory", path=".")
    entries = {entry["name"]: entry for entry in listing["entries"]}
    assert listing["path"] == str(tree.rw)
    assert [entry["name"] for entry in listing["entries"]] == ["link", "notes.txt", "sub"]
    assert entries["notes.txt"]["type"] == "file" and entries["notes.txt"]["size_bytes"] == 21
    assert entries["notes.txt"]["modified"] == "2023-11-14T22:13:20Z"
    assert entries["sub"]["type"] == "directory" and entries["link"]["type"] == "symlink"
    assert all(ISO_UTC.match(entry["modified"]) for entry in listing["entries"])
    assert listing["next_cursor"] is None and listing["truncated"] is False


def test_list_directory_depth_descends_but_never_into_links(fs: FsClient, tree: Tree) -> None:
    (tree.rw / "sub" / "deeper").mkdir()
    (tree.rw / "sub" / "deeper" / "leaf.txt").write_text("leaf")
    os.symlink(tree.rw / "sub", tree.rw / "sub_link")
    names = [entry["name"] for entry in fs.ok("list_directory", path=".", depth=2)["entries"]]
    deep = [entry["name"] for entry in fs.ok("list_directory", path=".", depth=3)["entries"]]
    assert names == ["notes.txt", "sub", "sub/deeper", "sub/inner.txt", "sub_link"]
    assert deep == ["notes.txt", "sub", "sub/deeper", "sub/deeper/leaf.txt", "sub/inner.txt", "sub_link"]


def test_list_directory_pages_with_a_cursor(fs: FsClient, tree: Tree) -> None:
    for number in range(25):
        (tree.rw / "sub" / f"f{number:02d}").write_text("")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        arguments = {"path": "sub", "limit": 10, **({"cursor": cursor} if cursor else {})}
        page = fs.ok("list_directory", **arguments)
        pages += 1
        seen += [entry["name"] for entry in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(["inner.txt", *(f"f{number:02d}" for number in range(25))])


def test_list_directory_refuses_a_cursor_from_another_listing(fs: FsClient, tree: Tree) -> None:
    for number in range(3):
        (tree.rw / f"x{number}").write_text("")
    cursor = fs.ok("list_directory", path=".", limit=1)["next_cursor"]
    assert "cursor belongs to another listing" in fs.error("list_directory", path="sub", cursor=cursor)
    assert "cursor is not one list_directory returned" in fs.error("list_directory", path=".", cursor="nope")


def test_list_directory_of_a_file_says_it_is_not_a_directory(fs: FsClient) -> None:
    assert "is a file, not a directory" in fs.error("list_directory", path="notes.txt")


# create_directory ------------------------------------------------------------------------------


def test_create_directory_makes_parents_and_is_idempotent(fs: FsClient, tree: Tree) -> None:
    first = fs.ok("create_directory", path="x/y/z")
    again = fs.ok("create_directory", path="x/y/z")
    assert first == {"path": str(tree.rw / "x" / "y" / "z"), "created": True}
    assert again["created"] is False
    assert (tree.rw / "x" / "y" / "z").is_dir()


def test_create_directory_over_a_file_fails(fs: FsClient) -> None:
    assert "notes.txt is a file, not a directory" in fs.error("create_directory", path="notes.txt/inner")


# get_file_info ---------------------------------------------------------------------------------


def test_get_file_info_describes_files_and_directories(fs: FsClient, tree: Tree) -> None:
    (tree.rw / "notes.txt").chmod(0o640)
    info = fs.ok("get_file_info", path="notes.txt")
    root_info = fs.ok("get_file_info", path=str(tree.ro))
    assert info["path"] == str(tree.rw / "notes.txt")
    assert (info["type"], info["size_bytes"], info["permissions"], info["links"]) == ("file", 21, "0640", 1)
    assert info["writable"] is True
    assert all(ISO_UTC.match(info[key]) for key in ("modified", "accessed", "changed"))
    assert datetime.fromisoformat(info["modified"].replace("Z", "+00:00")).year >= 2024
    assert (root_info["type"], root_info["writable"], root_info["path"]) == ("directory", False, str(tree.ro))


# search_files ----------------------------------------------------------------------------------


def make_project(tree: Tree) -> None:
    for relative in (
        "src/app.py",
        "src/util/helpers.py",
        "src/util/data.json",
        "tests/test_app.py",
        "README.md",
        ".hidden.py",
        "node_modules/pkg/index.py",
    ):
        path = tree.rw / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def matched(result: dict[str, object], tree: Tree) -> list[str]:
    return [os.path.relpath(str(match["path"]), tree.rw) for match in result["matches"]]  # type: ignore[attr-defined, index]


def test_search_files_matches_globs_relative_to_the_path(fs: FsClient, tree: Tree) -> None:
    make_project(tree)
    everywhere = fs.ok("search_files", pattern="**/*.py")
    top = fs.ok("search_files", pattern="*.py")
    under_src = fs.ok("search_files", path="src", pattern="**/*.py")
    braces = fs.ok("search_files", pattern="**/*.{json,md}")
    assert matched(everywhere, tree) == [
        ".hidden.py",
        "node_modules/pkg/index.py",
        "src/app.py",
        "src/util/helpers.py",
        "tests/test_app.py",
    ]
    assert matched(top, tree) == [".hidden.py"]
    assert matched(under_src, tree) == ["src/app.py", "src/util/helpers.py"]
    assert matched(braces, tree) == ["README.md", "src/util/data.json"]
    assert everywhere["truncated"] is False and everywhere["entries_scanned"] >= 12


def test_search_files_skips_excluded_directories(fs: FsClient, tree: Tree) -> None:
    make_project(tree)
    result = fs.ok("search_files", pattern="**/*.py", exclude_patterns=["node_modules", "tests/**"])
    assert matched(result, tree) == [".hidden.py", "src/app.py", "src/util/helpers.py"]


def test_search_files_stops_at_max_results_and_the_server_cap(
    serve_fs: Callable[..., FsClient], tree: Tree
) -> None:
    fs = serve_fs(filesystem_max_search_results=3)
    for number in range(10):
        (tree.rw / f"f{number}.txt").write_text("")
    two = fs.ok("search_files", pattern="*.txt", max_results=2)
    capped = fs.ok("search_files", pattern="*.txt", max_results=100)
    assert len(two["matches"]) == 2 and two["truncated_reason"] == "reached the cap of 2 results"
    assert len(capped["matches"]) == 3 and capped["truncated_reason"] == "reached the cap of 3 results"


def test_search_files_never_follows_links_out_of_the_root(fs: FsClient, tree: Tree) -> None:
    os.symlink(tree.outside, tree.rw / "link_out")
    result = fs.call("search_files", pattern="**/*secret*")
    assert result["isError"] is False
    assert result["structuredContent"]["matches"] == []
    assert SECRET not in result["content"][0]["text"]


# move_file -------------------------------------------------------------------------------------


def test_move_file_renames_and_refuses_to_overwrite_unless_asked(fs: FsClient, tree: Tree) -> None:
    (tree.rw / "other.txt").write_text("other")
    moved = fs.ok("move_file", source="notes.txt", destination="sub/renamed.txt")
    refused = fs.error("move_file", source="other.txt", destination="sub/renamed.txt")
    replaced = fs.ok("move_file", source="other.txt", destination="sub/renamed.txt", overwrite=True)
    assert moved == {
        "source": str(tree.rw / "notes.txt"),
        "destination": str(tree.rw / "sub" / "renamed.txt"),
        "type": "file",
        "replaced": False,
    }
    assert "already exists; pass overwrite=true" in refused
    assert replaced["replaced"] is True
    assert (tree.rw / "sub" / "renamed.txt").read_text() == "other"
    assert not (tree.rw / "notes.txt").exists() and not (tree.rw / "other.txt").exists()


def test_move_file_moves_directories_and_needs_the_parent(fs: FsClient, tree: Tree) -> None:
    assert fs.ok("move_file", source="sub", destination="moved")["type"] == "directory"
    assert (tree.rw / "moved" / "inner.txt").read_text() == "inner\n"
    assert "nowhere does not exist" in fs.error("move_file", source="moved", destination="nowhere/x")
    assert "moving a directory into itself" in fs.error(
        "move_file", source="moved", destination="moved/inside"
    )


def test_move_file_moves_a_symlink_as_a_link(fs: FsClient, tree: Tree) -> None:
    os.symlink(tree.outside, tree.rw / "link_out")
    fs.ok("move_file", source="link_out", destination="sub/link_out")
    assert os.readlink(tree.rw / "sub" / "link_out") == str(tree.outside)
    assert "points outside the root" in fs.error("read_file", path="sub/link_out/secret.txt")


# list_allowed_roots and health -----------------------------------------------------------------


def test_list_allowed_roots_names_each_root_and_its_mode(fs: FsClient, tree: Tree) -> None:
    result = fs.call("list_allowed_roots")
    assert result["structuredContent"] == {
        "roots": [
            {"path": str(tree.rw), "mode": "rw", "available": True},
            {"path": str(tree.ro), "mode": "ro", "available": True},
        ],
        "relative_paths_start_at": str(tree.rw),
    }
    assert f"{tree.ro} (ro)" in result["content"][0]["text"]


def test_health_is_ok_with_every_root_present(fs: FsClient, tree: Tree) -> None:
    response = httpx.get(f"{fs.url}/health")
    assert response.status_code == 200
    assert response.json()["checks"]["roots"] == {"status": "ok", "detail": f"{tree.rw} (rw), {tree.ro} (ro)"}
    assert response.json()["tools_count"] == 8


def test_health_is_degraded_when_a_root_is_missing_or_not_a_directory(
    serve_fs: Callable[..., FsClient], tree: Tree
) -> None:
    missing = tree.base / "missing"
    fs = serve_fs(allowed_paths=f"{tree.rw}:rw,{missing}:ro,{tree.rw / 'notes.txt'}:ro")
    response = httpx.get(f"{fs.url}/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["roots"]["status"] == "down"
    assert f"{missing} does not exist" in body["checks"]["roots"]["detail"]
    assert f"{tree.rw / 'notes.txt'} is not a directory" in body["checks"]["roots"]["detail"]
    assert fs.ok("read_file", path="notes.txt")["content"].startswith("line 1")
    assert "is not available" in fs.error("read_file", path=f"{missing}/x")


def test_a_read_only_root_nested_in_a_writable_one_stays_read_only(
    serve_fs: Callable[..., FsClient], tree: Tree
) -> None:
    fs = serve_fs(allowed_paths=f"{tree.rw}:rw,{tree.rw / 'sub'}:ro")
    before = (tree.rw / "sub" / "inner.txt").read_text()
    through_parent = fs.error("write_file", path="sub/inner.txt", content="changed")
    mkdir_inside = fs.error("create_directory", path="sub/new/deeper")
    move_root = fs.error("move_file", source="sub", destination="elsewhere")
    assert f"{tree.rw / 'sub'} is a read-only root" in through_parent
    assert "is a read-only root" in mkdir_inside
    assert "is an allowed root; it cannot be moved" in move_root
    assert (tree.rw / "sub" / "inner.txt").read_text() == before
    assert sorted(os.listdir(tree.rw / "sub")) == ["inner.txt"]
    assert fs.ok("get_file_info", path="sub")["writable"] is False
    assert fs.ok("get_file_info", path="sub/inner.txt")["writable"] is False
    assert fs.ok("get_file_info", path="notes.txt")["writable"] is True
    assert fs.ok("read_file", path="sub/inner.txt")["content"] == before
