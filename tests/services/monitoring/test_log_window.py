"""The caps on log output: newest lines kept, bytes bounded, huge lines cut, lines split across chunks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.monitoring.log_window import LineCollector, LineSplitter, LogWindow, clip_line


def test_the_window_keeps_the_newest_items_within_both_caps():
    window: LogWindow[str] = LogWindow(max_lines=3, max_bytes=10)
    for item in ["aaaa", "bbbb", "cc", "d", "eeee"]:
        window.add(item, len(item))

    assert window.items == ["cc", "d", "eeee"]
    assert window.dropped == 2 and window.truncated


def test_clipping_marks_the_cut_and_respects_utf8():
    clipped, cut = clip_line("é" * 100, 50)

    assert cut and clipped.endswith("…[line truncated]")
    assert len(clipped.encode()) <= 50
    assert clip_line("short", 50) == ("short", False)


@given(st.lists(st.text(alphabet="ab\né", max_size=30), max_size=10))
def test_lines_split_across_chunks_come_out_whole(chunks):
    splitter = LineSplitter(max_line_bytes=10_000)
    lines = [line for chunk in chunks for line in splitter.feed(chunk.encode())] + splitter.flush()

    text = "".join(chunks)
    expected = text.split("\n")
    if expected[-1] == "":
        expected.pop()
    assert [line.decode() for line in lines] == expected


def test_a_line_without_end_never_holds_more_than_its_cap_in_memory():
    splitter = LineSplitter(max_line_bytes=100)
    for _ in range(1000):
        splitter.feed(b"x" * 1000)

    (line,) = splitter.flush()
    assert len(line) == 100


def test_the_collector_parses_timestamps_and_tags_streams():
    collector = LineCollector(max_lines=10, max_bytes=1000)
    collector.feed(b"2026-11-26T10:00:00.000000001Z started\n2026-11-26T10:00:01.5Z ", "stdout")
    collector.feed(b"2026-11-26T10:00:01Z oops\n", "stderr")
    collector.feed(b"ready\nno timestamp here", "stdout")

    lines, truncated = collector.finish()

    assert [(line.timestamp, line.stream, line.message) for line in lines] == [
        ("2026-11-26T10:00:00.000000001Z", "stdout", "started"),
        ("2026-11-26T10:00:01Z", "stderr", "oops"),
        ("2026-11-26T10:00:01.5Z", "stdout", "ready"),
        (None, "stdout", "no timestamp here"),
    ]
    assert truncated is False
