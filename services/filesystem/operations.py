"""The blocking work behind each filesystem tool; every path goes through :class:`Sandbox` first.

Most functions run in a worker thread; the small, bounded ones (opening a file to read, reading a small
one, describing a file) may run on the event loop (see :mod:`services.filesystem.service`). All raise
:class:`~services.filesystem.sandbox.SandboxError` (a ``ToolError``) for anything a model should read.

Files with more than one hard link are neither read nor written: a hard link made inside a root can name
a file that also lives outside it, and nothing on the link tells which name is the original.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from libmcp.tools import EncodedText
from services.filesystem.globs import Glob, GlobError, GlobLimits
from services.filesystem.models import (
    AllowedRoot,
    DirectoryEntry,
    FileInfo,
    ListAllowedRootsResult,
    ListDirectoryResult,
    MoveFileResult,
    ReadFileResult,
    SearchFilesResult,
    SearchMatch,
    WriteFileResult,
)
from services.filesystem.sandbox import (
    Location,
    Root,
    Sandbox,
    atomic_write,
    describe_os_error,
    failed,
    kind_of,
    opened_directory_entry,
    refused,
    rename_no_replace,
)

_CHUNK = 65_536


@dataclass(frozen=True)
class Limits:
    """The caps a call works within (from the settings, and the tool timeout for searches)."""

    max_read_bytes: int
    max_write_bytes: int
    max_search_results: int
    search_time_budget_s: float
    search_max_entries: int = 200_000
    list_max_entries: int = 100_000
    glob: GlobLimits = field(default_factory=GlobLimits)


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# read_file -------------------------------------------------------------------------------------


@dataclass
class OpenedFile:
    """A regular file opened for reading: its descriptor (owned: :func:`read_opened` closes it) and status.

    ``status`` comes from ``fstat`` on the descriptor itself, so what it says (a regular file, one link,
    this size) is true of the very file that is read, whatever happens to its name afterwards.
    """

    fd: int
    display: str
    status: os.stat_result

    @property
    def size(self) -> int:
        return self.status.st_size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_for_reading(sandbox: Sandbox, path: str) -> OpenedFile:
    """Resolve ``path`` and open it as a regular file with one link: a few system calls, no data read."""
    with sandbox.locate(path, check_read_only_root=False) as location:
        return _open_regular_for_reading(path, location)


def read_opened(
    opened: OpenedFile,
    path: str,
    limits: Limits,
    *,
    head: int | None = None,
    tail: int | None = None,
    start_line: int | None = None,
    end_line: int | None = None,
) -> ReadFileResult:
    """Read what was asked from a file :func:`open_for_reading` opened, and close it.

    Reads at most about ``limits.max_read_bytes`` whatever the file does meanwhile (it may grow).
    """
    size = opened.size
    cap = limits.max_read_bytes
    total: int | None = None
    first: int | None
    try:
        if tail is not None or head is not None or start_line is not None or end_line is not None:
            with os.fdopen(opened.fd, "rb", closefd=False) as file:
                if tail is not None:
                    data, first = _read_tail(file, size, tail, path, cap)
                else:
                    first = start_line or 1
                    last = head if head is not None else end_line
                    data = _read_lines(file, first, last, path, cap)
            count = _count_lines(data)
        else:
            if size > cap:
                raise failed(
                    path,
                    f"is {size} bytes, more than FILESYSTEM_MAX_READ_BYTES={cap}; "
                    "read part of it with head, tail or start_line/end_line",
                )
            data = _read_whole(opened.fd, size, cap, path)
            first = 1
            count = total = _count_lines(data)
    finally:
        opened.close()
    return ReadFileResult(
        path=opened.display,
        content=_text(path, data),
        size_bytes=size,
        start_line=first if count and first else None,
        end_line=first + count - 1 if count and first else None,
        total_lines=total,
    )


def read_bytes(opened: OpenedFile, path: str, limits: Limits) -> bytes:
    """The whole file :func:`open_for_reading` opened, as bytes, within FILESYSTEM_MAX_READ_BYTES;
    closes it."""
    cap = limits.max_read_bytes
    try:
        if opened.size > cap:
            raise failed(path, f"is {opened.size} bytes, more than FILESYSTEM_MAX_READ_BYTES={cap}")
        return _read_whole(opened.fd, opened.size, cap, path)
    finally:
        opened.close()


def _read_whole(fd: int, size: int, cap: int, path: str) -> bytes:
    """The file from its start to its end, at most ``cap`` bytes (more is refused).

    The first read asks for the size fstat reported plus one byte, so the usual file takes one read and
    one more to see the end, and no buffer of ``cap`` bytes is allocated for a small file.
    """
    chunks: list[bytes] = []
    used = 0
    want = size + 1
    while True:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        used += len(chunk)
        if used > cap:
            raise failed(path, f"grew past FILESYSTEM_MAX_READ_BYTES={cap} while it was read")
        want = min(_CHUNK, cap + 1 - used)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _open_regular_for_reading(path: str, location: Location) -> OpenedFile:
    display = location.display
    if location.name is None:
        raise failed(path, f"{display} is a directory; use list_directory")
    before = location.status
    if before is None:
        # Resolution saw no such name (or did not look): the open below reports why, or it appeared since.
        try:
            before = os.stat(location.name, dir_fd=location.dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise failed(path, f"{display} {describe_os_error(exc)}") from None
    # Decided before opening, so a device or a FIFO is never opened; the fstat below proves the rest.
    _require_readable_file(path, display, before)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(location.name, flags, dir_fd=location.dir_fd)
    except OSError as exc:
        raise failed(path, f"{display} {describe_os_error(exc)}") from None
    after = os.fstat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise refused(path, f"{display} was replaced while it was opened; try again")
    try:
        _require_readable_file(path, display, after)
    except BaseException:
        os.close(fd)
        raise
    return OpenedFile(fd, display, after)


def _require_readable_file(path: str, display: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise failed(path, f"{display} is a directory; use list_directory")
    if not stat.S_ISREG(info.st_mode):
        raise refused(path, f"{display} is a {kind_of(info.st_mode)}, not a regular file")
    if info.st_nlink > 1:
        raise refused(
            path,
            f"{display} has {info.st_nlink} hard links; files with more than one link are "
            "not read or written, as another link may lie outside the allowed roots",
        )


def _read_lines(file: BinaryIO, first: int, last: int | None, path: str, cap: int) -> bytes:
    """Lines ``first``..``last`` (1-based, inclusive; ``None`` = to the end), at most ``cap`` bytes."""
    number = 1
    while number < first:
        line = file.readline(_CHUNK)
        if not line:
            return b""
        if line.endswith(b"\n"):
            number += 1
    parts: list[bytes] = []
    used = 0
    while last is None or number <= last:
        line = file.readline(cap - used + 1)
        if not line:
            break
        used += len(line)
        if used > cap:
            raise failed(path, f"the lines asked for exceed FILESYSTEM_MAX_READ_BYTES={cap}; ask for fewer")
        parts.append(line)
        if line.endswith(b"\n"):
            number += 1
    return b"".join(parts)


def _read_tail(file: BinaryIO, size: int, count: int, path: str, cap: int) -> tuple[bytes, int | None]:
    """The last ``count`` lines and the number of the first of them (None unless the whole file was read)."""
    position = size
    data = b""
    while position > 0:
        body = data[:-1] if data.endswith(b"\n") else data
        # count newlines inside the data = the line before the wanted ones has ended: enough read.
        if body.count(b"\n") >= count or len(data) > cap:
            break
        step = min(_CHUNK, position)
        position -= step
        file.seek(position)
        data = file.read(step) + data
    lines = data.splitlines(keepends=True)
    selected = lines[-count:]
    text = b"".join(selected)
    if len(text) > cap:
        raise failed(path, f"the last {count} lines exceed FILESYSTEM_MAX_READ_BYTES={cap}; ask for fewer")
    first = len(lines) - len(selected) + 1 if position == 0 and selected else None
    return text, first


def _count_lines(data: bytes) -> int:
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def _text(path: str, data: bytes) -> EncodedText:
    """The text of ``data``, checked and JSON-encoded without decoding it (see EncodedText)."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise failed(
            path, f"is not a text file (NUL byte at offset {nul}); read_file returns UTF-8 text only"
        )
    try:
        return EncodedText.from_utf8(data)
    except ValueError:
        pass
    try:
        text = data.decode("utf-8")  # the slow way, which names the offset of the first invalid byte
    except UnicodeDecodeError as exc:
        raise failed(
            path, f"is not UTF-8 text (invalid byte at offset {exc.start}); read_file returns UTF-8 text only"
        ) from None
    return EncodedText.from_text(text)


# write_file ------------------------------------------------------------------------------------


def write_file(
    sandbox: Sandbox, path: str, content: str, limits: Limits, *, create_parents: bool
) -> WriteFileResult:
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:
        raise failed(path, "content is not valid Unicode (lone surrogate)") from None
    if len(data) > limits.max_write_bytes:
        raise failed(
            path,
            f"content is {len(data)} bytes, more than FILESYSTEM_MAX_WRITE_BYTES={limits.max_write_bytes}",
        )
    with sandbox.locate(path, write=True, create_parents=create_parents) as location:
        if location.name is None:
            raise failed(path, f"{location.display} is a directory")
        try:
            existing: os.stat_result | None = os.stat(
                location.name, dir_fd=location.dir_fd, follow_symlinks=False
            )
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                raise failed(path, f"{location.display} is a directory")
            if not stat.S_ISREG(existing.st_mode):
                raise refused(
                    path, f"{location.display} is a {kind_of(existing.st_mode)}, not a regular file"
                )
            if existing.st_nlink > 1:
                raise refused(
                    path,
                    f"{location.display} has {existing.st_nlink} hard links; files with more "
                    "than one link are not read or written, as another link may lie outside "
                    "the allowed roots",
                )
        try:
            atomic_write(location.dir_fd, location.name, data, like=existing)
        except OSError as exc:
            raise failed(path, f"cannot write {location.display}: {describe_os_error(exc)}") from None
        return WriteFileResult(path=location.display, bytes_written=len(data), created=existing is None)


# create_directory ------------------------------------------------------------------------------


def create_directory(sandbox: Sandbox, path: str) -> tuple[str, bool]:
    with sandbox.open_directory(path, write=True, create=True) as location:
        return location.display, location.created


# get_file_info ---------------------------------------------------------------------------------


def get_file_info(sandbox: Sandbox, path: str) -> FileInfo:
    with sandbox.locate(path) as location:
        try:
            if location.name is None:
                info = os.fstat(location.dir_fd)
            else:
                info = os.stat(location.name, dir_fd=location.dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise failed(path, f"{location.display} {describe_os_error(exc)}") from None
        return FileInfo(
            path=location.display,
            type=kind_of(info.st_mode),
            size_bytes=info.st_size,
            modified=iso(info.st_mtime),
            accessed=iso(info.st_atime),
            changed=iso(info.st_ctime),
            permissions=f"{stat.S_IMODE(info.st_mode):04o}",
            links=info.st_nlink,
            writable=location.root.writable
            and not location.in_read_only_root
            and not sandbox.is_root(info, read_only=True),
        )


# list_directory --------------------------------------------------------------------------------


def _encode_cursor(path: str, depth: int, offset: int) -> str:
    raw = json.dumps({"path": path, "depth": depth, "offset": offset}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str, path: str, depth: int) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        offset = int(data["offset"])
        same = data["path"] == path and data["depth"] == depth
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise failed(path, "cursor is not one list_directory returned") from None
    if not same or offset < 0:
        raise failed(path, "cursor belongs to another listing (other path or depth)")
    return offset


@dataclass
class _Scan:
    budget: int
    deadline: float
    scanned: int = 0
    exhausted: bool = False

    def spend(self) -> bool:
        self.scanned += 1
        if self.scanned > self.budget or time.monotonic() > self.deadline:
            self.exhausted = True
        return not self.exhausted


def _walk_tree(
    dir_fd: int, prefix: str, depth: int, scan: _Scan, skip: Sequence[Glob] = ()
) -> Iterator[tuple[str, os.stat_result]]:
    """Entries under an open directory, depth first in name order, never following symbolic links."""
    try:
        with os.scandir(dir_fd) as iterator:
            names = sorted(entry.name for entry in iterator)
    except OSError:
        return
    for name in names:
        if not scan.spend():
            return
        relative = f"{prefix}{name}"
        if any(glob.matches(relative) or glob.matches(name) for glob in skip):
            continue
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        yield relative, info
        if depth > 1 and stat.S_ISDIR(info.st_mode):
            try:
                with opened_directory_entry(dir_fd, name) as child:
                    yield from _walk_tree(child, f"{relative}/", depth - 1, scan, skip)
            except OSError:
                continue  # replaced by something else since the stat: skip it
            if scan.exhausted:
                return


def list_directory(
    sandbox: Sandbox,
    path: str,
    *,
    depth: int,
    limit: int,
    cursor: str | None,
    time_budget_s: float,
    max_entries: int = 100_000,
) -> ListDirectoryResult:
    with sandbox.open_directory(path) as location:
        display = location.display
        offset = _decode_cursor(cursor, display, depth) if cursor else 0
        scan = _Scan(budget=max_entries, deadline=time.monotonic() + time_budget_s)
        entries: list[DirectoryEntry] = []
        more = False
        for index, (relative, info) in enumerate(_walk_tree(location.dir_fd, "", depth, scan)):
            if index < offset:
                continue
            if len(entries) == limit:
                more = True
                break
            entries.append(
                DirectoryEntry(
                    name=relative,
                    path=f"{display.rstrip('/')}/{relative}",
                    type=kind_of(info.st_mode),
                    size_bytes=info.st_size,
                    modified=iso(info.st_mtime),
                )
            )
    return ListDirectoryResult(
        path=display,
        entries=entries,
        next_cursor=_encode_cursor(display, depth, offset + limit) if more else None,
        truncated=scan.exhausted and not more,
    )


# search_files ----------------------------------------------------------------------------------


def check_pattern(path: str, pattern: str, limits: GlobLimits, what: str = "pattern") -> None:
    """Refuse patterns that name anything outside the directory searched (or too long to quote)."""
    if not pattern.strip():
        raise failed(path, f"{what} is empty")
    if len(pattern) > limits.max_length:
        raise refused(
            path,
            f"{what} is {len(pattern)} characters long, more than FILESYSTEM_MAX_PATTERN_LENGTH="
            f"{limits.max_length}",
        )
    if "\x00" in pattern:
        raise refused(path, f"{what} {pattern!r} contains a NUL byte")
    if pattern.startswith(("/", "~")):
        raise refused(path, f"{what} {pattern!r} must be relative to the directory searched")
    if ".." in pattern.split("/"):
        raise refused(path, f"{what} {pattern!r} contains '..'; search from a directory higher up instead")


def search_files(
    sandbox: Sandbox,
    path: str,
    pattern: str,
    limits: Limits,
    *,
    exclude_patterns: list[str],
    max_results: int | None,
) -> SearchFilesResult:
    check_pattern(path, pattern, limits.glob)
    for exclude in exclude_patterns:
        check_pattern(path, exclude, limits.glob, "exclude pattern")
    matcher = _compile(path, pattern, limits.glob, "pattern")
    skip = [_compile(path, item, limits.glob, "exclude pattern") for item in exclude_patterns]
    cap = min(max_results or limits.max_search_results, limits.max_search_results)
    budget = limits.search_max_entries
    scan = _Scan(budget=budget, deadline=time.monotonic() + limits.search_time_budget_s)
    matches: list[SearchMatch] = []
    reason: str | None = None
    with sandbox.open_directory(path) as location:
        display = location.display
        for relative, info in _walk_tree(location.dir_fd, "", 64, scan, skip):
            if matcher.matches(relative):
                if len(matches) == cap:
                    reason = f"reached the cap of {cap} results"
                    break
                matches.append(
                    SearchMatch(path=f"{display.rstrip('/')}/{relative}", type=kind_of(info.st_mode))
                )
    if reason is None and scan.exhausted:
        reason = (
            f"scanned {budget} entries (FILESYSTEM_SEARCH_MAX_ENTRIES); search a smaller directory"
            if scan.scanned > budget
            else f"took longer than {limits.search_time_budget_s:g} s (FILESYSTEM_SEARCH_TIMEOUT_S, at most "
            "half of MCP_TOOL_TIMEOUT_S); search a smaller directory"
        )
    return SearchFilesResult(
        path=display,
        pattern=pattern,
        matches=matches,
        truncated=reason is not None,
        truncated_reason=reason,
        entries_scanned=min(scan.scanned, budget),
    )


def _compile(path: str, pattern: str, limits: GlobLimits, what: str) -> Glob:
    try:
        return Glob(pattern, limits)
    except GlobError as exc:
        raise failed(path, f"{what} {exc}") from None


# move_file -------------------------------------------------------------------------------------


def move_file(sandbox: Sandbox, source: str, destination: str, *, overwrite: bool) -> MoveFileResult:
    with sandbox.locate(source, write=True, follow_final=False) as origin:
        if origin.name is None:
            raise refused(
                source, f"{origin.display} is an allowed root or reached through '..'; it cannot be moved"
            )
        try:
            info = os.stat(origin.name, dir_fd=origin.dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise failed(source, f"{origin.display} {describe_os_error(exc)}") from None
        if sandbox.is_root(info):
            raise refused(source, f"{origin.display} is an allowed root; it cannot be moved")
        with sandbox.locate(destination, write=True, follow_final=False) as target:
            if target.name is None:
                raise failed(destination, f"{target.display} is a directory; give the full new path")
            try:
                existing = os.stat(target.name, dir_fd=target.dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                existing = None
            except OSError as exc:
                raise failed(destination, f"{target.display} {describe_os_error(exc)}") from None
            if existing is not None and sandbox.is_root(existing):
                raise refused(destination, f"{target.display} is an allowed root; it cannot be replaced")
            try:
                if overwrite:
                    os.replace(origin.name, target.name, src_dir_fd=origin.dir_fd, dst_dir_fd=target.dir_fd)
                else:
                    rename_no_replace(origin.dir_fd, origin.name, target.dir_fd, target.name)
            except FileExistsError:
                raise failed(
                    destination, f"{target.display} already exists; pass overwrite=true to replace it"
                ) from None
            except OSError as exc:
                raise failed(
                    source, f"cannot move {origin.display} to {target.display}: {describe_os_error(exc)}"
                ) from None
            for fd in {origin.dir_fd, target.dir_fd}:
                os.fsync(fd)
            return MoveFileResult(
                source=origin.display,
                destination=target.display,
                type=kind_of(info.st_mode),
                replaced=existing is not None,
            )


# list_allowed_roots ----------------------------------------------------------------------------


def list_allowed_roots(sandbox: Sandbox) -> ListAllowedRootsResult:
    return ListAllowedRootsResult(
        roots=[
            AllowedRoot(path=root.path, mode=root.mode, available=os.path.isdir(root.path))
            for root in sandbox.roots
        ],
        relative_paths_start_at=sandbox.roots[0].path,
    )


def root_problems(roots: tuple[Root, ...]) -> list[str]:
    """Why roots are unusable (missing, not a directory); empty when all are fine."""
    problems = []
    for root in roots:
        if not os.path.exists(root.path):
            problems.append(f"{root.path} does not exist")
        elif not os.path.isdir(root.path):
            problems.append(f"{root.path} is not a directory")
    return problems
