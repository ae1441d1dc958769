"""Log output cut to size: the newest lines within a line cap and a byte cap, kept as a log streams in."""

from __future__ import annotations

from collections import deque
from typing import Generic, Literal, TypeVar

from services.monitoring.models import LogLine

T = TypeVar("T")
Stream = Literal["stdout", "stderr"]

TRUNCATION_MARK = " …[line truncated]"


class LogWindow(Generic[T]):
    """Keep the last ``max_lines`` items whose sizes add up to at most ``max_bytes``; older ones fall out.

    Memory stays bounded however long the log is, and ``dropped`` counts what fell out so the
    result can say it was cut.
    """

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._kept: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self.dropped = 0

    def add(self, item: T, size: int) -> None:
        self._kept.append((item, size))
        self._bytes += size
        while self._kept and (len(self._kept) > self.max_lines or self._bytes > self.max_bytes):
            self._bytes -= self._kept.popleft()[1]
            self.dropped += 1

    @property
    def items(self) -> list[T]:
        return [item for item, _ in self._kept]

    @property
    def truncated(self) -> bool:
        return self.dropped > 0


def clip_line(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` cut to ``max_bytes`` UTF-8 bytes (marked), so one huge line cannot exceed the byte cap."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        return text, False
    budget = max(0, max_bytes - len(TRUNCATION_MARK.encode()))
    return encoded[:budget].decode("utf-8", "ignore") + TRUNCATION_MARK, True


class LineSplitter:
    """Split a byte stream into lines; a line never holds more than ``max_line_bytes`` in memory."""

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._keep(data[start:end])
            lines.append(bytes(self._pending))
            self._pending.clear()
            start = end + 1
        self._keep(data[start:])
        return lines

    def flush(self) -> list[bytes]:
        line, self._pending = bytes(self._pending), bytearray()
        return [line] if line else []

    def _keep(self, piece: bytes) -> None:
        room = self.max_line_bytes - len(self._pending)
        self._pending += piece[: max(0, room)]


def split_timestamp(line: str) -> tuple[str | None, str]:
    """``2026-11-26T10:00:00.123456789Z message`` (Kubernetes' and Docker's ``timestamps``) -> both parts."""
    stamp, sep, message = line.partition(" ")
    if sep and len(stamp) >= 20 and stamp[:4].isdigit() and stamp[10:11] == "T":
        return stamp, message
    return None, line


class LineCollector:
    """Turn raw log bytes (per stream) into the newest :class:`LogLine` s that fit the caps."""

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.window: LogWindow[LogLine] = LogWindow(max_lines, max_bytes)
        self.max_bytes = max_bytes
        self.clipped = False
        self._splitters: dict[Stream | None, LineSplitter] = {}

    def feed(self, data: bytes, stream: Stream | None = None) -> None:
        splitter = self._splitters.get(stream)
        if splitter is None:
            # A little over the cap, so clip_line sees that a line was cut and marks it.
            splitter = self._splitters[stream] = LineSplitter(self.max_bytes + 64)
        for raw in splitter.feed(data):
            self._add(raw, stream)

    def finish(self) -> tuple[list[LogLine], bool]:
        for stream, splitter in self._splitters.items():
            for raw in splitter.flush():
                self._add(raw, stream)
        return self.window.items, self.window.truncated or self.clipped

    def _add(self, raw: bytes, stream: Stream | None) -> None:
        timestamp, message = split_timestamp(raw.decode("utf-8", "replace").rstrip("\r"))
        message, cut = clip_line(message, self.max_bytes)
        self.clipped = self.clipped or cut
        self.window.add(LogLine(timestamp=timestamp, stream=stream, message=message), len(message.encode()))
