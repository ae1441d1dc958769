"""Races: paths swapped for symbolic links while tools run, and readers during atomic replacement.

A thread flips a name between a real directory (or file) inside the root and a symbolic link pointing
outside, as fast as it can, while the test calls the tool through the server many times (a bounded
number). Whatever the interleaving, nothing outside the roots may be written or read.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.services.filesystem.conftest import SECRET, FsClient, Tree

MAX_CALLS = 600
ENOUGH_OF_EACH = 15


@contextmanager
def flipping(place: Path, *states: Path) -> Iterator[Callable[[], int]]:
    """Rename each of ``states`` to ``place`` and back, in turn, in a thread; yields a flip counter."""
    stop = threading.Event()
    flips = 0

    def run() -> None:
        nonlocal flips
        made = 0
        while not stop.is_set():
            for state in states:
                try:
                    os.rename(state, place)
                except FileNotFoundError:
                    continue  # the tool replaced or moved the name meanwhile; keep flipping what is there
                except OSError:
                    # `place` was free for a moment and the tool made a directory there (create_directory
                    # with its parents does): set that one aside, or no state could be moved in again.
                    made += 1
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(place, place.with_name(f"{place.name}.made{made}"))
                    continue
                # Release the GIL while `place` holds this state: without it the server's threads
                # wait up to a switch interval for each step and the race is tried far less often.
                time.sleep(0)
                with contextlib.suppress(FileNotFoundError):
                    os.rename(place, state)
            flips += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield lambda: flips
    finally:
        stop.set()
        thread.join(timeout=10)


def classify(result: dict[str, object]) -> str:
    if result["isError"] is False:
        return "ok"
    text = result["content"][0]["text"]  # type: ignore[index]
    for reason in ("points outside the root", "does not exist", "kept changing", "was replaced"):
        if reason in text:
            return reason
    return f"unexpected: {text}"


def run_until_both(
    call: Callable[[int], dict[str, object]], good: str, refused: str, max_calls: int = MAX_CALLS
) -> Counter[str]:
    """Call until both outcomes were seen often enough (at most ``max_calls`` times)."""
    outcomes: Counter[str] = Counter()
    for number in range(max_calls):
        outcomes[classify(call(number))] += 1
        if outcomes[good] >= ENOUGH_OF_EACH and outcomes[refused] >= ENOUGH_OF_EACH:
            break
    return outcomes


def test_a_directory_flipped_to_an_outside_link_never_receives_a_write(fs: FsClient, tree: Tree) -> None:
    real = tree.rw / "real"
    real.mkdir()
    link = tree.rw / "link"
    os.symlink(tree.outside, link)
    before = tree.snapshot()

    with flipping(tree.rw / "d", real, link) as flips:
        outcomes = run_until_both(
            lambda number: fs.call("write_file", path=f"d/file{number}.txt", content="payload"),
            "ok",
            "points outside the root",
        )
    assert flips() > 0

    assert tree.snapshot() == before
    assert set(outcomes) <= {"ok", "points outside the root", "does not exist", "kept changing"}, outcomes
    assert outcomes["ok"] > 0 and outcomes["points outside the root"] > 0, outcomes
    written = [name for name in os.listdir(real) if name.startswith("file")]
    assert len(written) == outcomes["ok"]


def test_a_directory_flipped_to_an_outside_link_never_gets_a_directory_made_in_it(
    fs: FsClient, tree: Tree
) -> None:
    real = tree.rw / "real"
    real.mkdir()
    link = tree.rw / "link"
    os.symlink(tree.outside, link)
    before = tree.snapshot()

    with flipping(tree.rw / "d", real, link):
        outcomes = run_until_both(
            lambda number: fs.call("create_directory", path=f"d/dir{number}/deeper"),
            "ok",
            "points outside the root",
        )

    assert tree.snapshot() == before
    assert outcomes["ok"] > 0 and outcomes["points outside the root"] > 0, outcomes


def test_a_file_flipped_to_an_outside_link_is_never_read_through(fs: FsClient, tree: Tree) -> None:
    inside = tree.rw / "inside.txt"
    inside.write_text("inside\n")
    link = tree.rw / "secret_link"
    os.symlink(tree.outside / "secret.txt", link)
    before = tree.snapshot()
    texts: list[str] = []
    contents: list[str] = []

    def read(number: int) -> dict[str, object]:
        result = fs.call("read_file", path="f")
        texts.append(result["content"][0]["text"])
        if result["isError"] is False:
            contents.append(result["structuredContent"]["content"])
        return result

    with flipping(tree.rw / "f", inside, link):
        outcomes = run_until_both(read, "ok", "points outside the root")

    assert not any(SECRET in text for text in texts)
    assert contents and set(contents) == {"inside\n"}
    assert outcomes["ok"] > 0 and outcomes["points outside the root"] > 0, outcomes
    assert tree.snapshot() == before


def test_a_file_flipped_to_an_outside_link_is_never_written_through(fs: FsClient, tree: Tree) -> None:
    inside = tree.rw / "inside.txt"
    inside.write_text("inside\n")
    link = tree.rw / "secret_link"
    os.symlink(tree.outside / "secret.txt", link)
    before = tree.snapshot()

    # A write that lands while `f` is the link replaces the link itself (never its target), so the
    # link state disappears after a while: a fixed, smaller number of calls is enough here.
    with flipping(tree.rw / "f", inside, link):
        outcomes = run_until_both(
            lambda number: fs.call("write_file", path="f", content=f"version {number}\n"),
            "ok",
            "points outside the root",
            max_calls=120,
        )

    assert tree.snapshot() == before
    assert (tree.outside / "secret.txt").read_text() == f"{SECRET}\n"
    assert outcomes["ok"] > 0, outcomes


def test_readers_never_see_a_partial_file_while_it_is_replaced(fs: FsClient, tree: Tree) -> None:
    """A reader on the disk and one through read_file run while write_file swaps two large versions."""
    versions = {("a" * 300_000).encode(), ("b" * 200_000).encode()}
    target = tree.rw / "big.txt"
    fs.ok("write_file", path="big.txt", content="a" * 300_000)
    stop = threading.Event()
    disk_reads: list[bytes] = []
    tool_reads: list[str] = []
    tool_refusals: list[str] = []

    def read_disk() -> None:
        while not stop.is_set():
            disk_reads.append(target.read_bytes())

    def read_tool() -> None:
        reader = FsClient(fs.url)
        while not stop.is_set():
            result = reader.call("read_file", path="big.txt")
            if result["isError"]:
                tool_refusals.append(result["content"][0]["text"])
            else:
                tool_reads.append(result["structuredContent"]["content"])
        reader.close()

    threads = [threading.Thread(target=read_disk), threading.Thread(target=read_tool)]
    for thread in threads:
        thread.start()
    try:
        for number in range(24):
            fs.ok(
                "write_file", path="big.txt", content=("b" * 200_000) if number % 2 == 0 else ("a" * 300_000)
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert disk_reads and tool_reads
    assert {len(data) for data in disk_reads} <= {300_000, 200_000}
    assert all(data in versions for data in disk_reads)
    assert all(text.encode() in versions for text in tool_reads)
    # A rename landing between the check of the name and its opening is noticed (never read through).
    assert all("was replaced while it was opened; try again" in text for text in tool_refusals), tool_refusals
    assert [name for name in os.listdir(tree.rw) if name.endswith(".tmp")] == []
