"""The filesystem service: read, write, list, search and move files inside the allowed roots.

Every path is checked by :mod:`services.filesystem.sandbox` before use; the blocking work lives in
:mod:`services.filesystem.operations`.

Where it runs: work that is small and bounded runs on the event loop itself (resolving a path, opening a
file, reading one of at most INLINE_READ_BYTES, describing a file, listing the roots): it takes tens of
microseconds, less than handing it to a thread, and under load a worker thread waits for the GIL up to a
switch interval (5 ms) after each of its system calls. Everything else (larger files, directory walks,
searches, writes with their fsyncs) runs in the service's own :class:`WorkerPool` of
FILESYSTEM_WORKER_THREADS threads, of which one client holds at most its share (MCP_CLIENT_SHARE).
"""

from __future__ import annotations

import asyncio
import functools
import mimetypes
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import TypeVar

from pydantic import BaseModel

from libmcp import (
    BlobResource,
    CheckContext,
    CheckResult,
    ServerSettings,
    Service,
    StartupContext,
    TextResource,
    ToolContext,
)
from libmcp.fairness import share_of
from services.filesystem import operations
from services.filesystem.globs import GlobLimits
from services.filesystem.models import (
    CreateDirectoryArgs,
    CreateDirectoryResult,
    FileInfo,
    GetFileInfoArgs,
    ListAllowedRootsResult,
    ListDirectoryArgs,
    ListDirectoryResult,
    MoveFileArgs,
    MoveFileResult,
    ReadFileArgs,
    ReadFileResult,
    SearchFilesArgs,
    SearchFilesResult,
    WriteFileArgs,
    WriteFileResult,
)
from services.filesystem.sandbox import Sandbox
from services.filesystem.settings import FilesystemSettings
from services.filesystem.workers import WorkerPool

VERSION = version("mcp-sse")
# Files up to this size (by fstat on the open descriptor) are read on the event loop.
INLINE_READ_BYTES = 65_536

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FilesystemState:
    """What the tools share, made once at start-up."""

    sandbox: Sandbox
    limits: operations.Limits
    workers: WorkerPool


service: Service[FilesystemSettings, FilesystemState] = Service(
    "filesystem",
    version=VERSION,
    title="Filesystem",
    instructions=(
        "Text files inside a few allowed directories (roots). Call list_allowed_roots first: it names the "
        "roots, which are read-only (ro) or read-write (rw). Paths are absolute inside a root, or relative "
        "to the first root. Paths leaving the roots (.., symbolic links pointing out) are refused."
    ),
    settings_class=FilesystemSettings,
)
Context = ToolContext[FilesystemSettings, FilesystemState]


def limits_of(settings: FilesystemSettings, server_settings: ServerSettings) -> operations.Limits:
    """The caps every call works within, from the settings (computed once, at start-up)."""
    return operations.Limits(
        max_read_bytes=settings.filesystem_max_read_bytes,
        max_write_bytes=settings.filesystem_max_write_bytes,
        max_search_results=settings.filesystem_max_search_results,
        # Stop searching well before the tool timeout, so a partial answer arrives instead of a timeout.
        search_time_budget_s=min(settings.filesystem_search_timeout_s, server_settings.tool_timeout_s * 0.5),
        search_max_entries=settings.filesystem_search_max_entries,
        list_max_entries=settings.filesystem_list_max_entries,
        glob=GlobLimits(
            max_length=settings.filesystem_max_pattern_length,
            max_segments=settings.filesystem_max_glob_segments,
            max_double_stars=settings.filesystem_max_glob_double_stars,
            max_wildcards=settings.filesystem_max_glob_wildcards,
            max_alternatives=settings.filesystem_max_glob_alternatives,
        ),
    )


async def _in_thread(
    ctx: Context, function: Callable[[], T], *, if_never_run: Callable[[], None] | None = None
) -> T:
    """Run ``function`` in the worker pool, within the calling client's share of its threads."""
    return await ctx.state.workers.run(ctx.client_id, function, if_never_run=if_never_run)


@service.lifespan
async def open_sandbox(ctx: StartupContext[FilesystemSettings]) -> AsyncIterator[FilesystemState]:
    settings = ctx.settings
    sandbox = Sandbox(settings.allowed_paths)
    limits = limits_of(settings, ctx.server_settings)
    threads = settings.filesystem_worker_threads
    workers = WorkerPool(
        threads,
        share_of(threads, ctx.server_settings.client_share),
        ctx.server_settings.queue_timeout_s,
    )
    try:
        yield FilesystemState(sandbox, limits, workers)
    finally:
        workers.shutdown()


@service.tool(title="Read a text file", read_only=True, idempotent=True)
async def read_file(args: ReadFileArgs, ctx: Context) -> ReadFileResult:
    """Read a UTF-8 text file inside an allowed root.

    Returns the whole file, or only the first lines (head), the last lines (tail) or a range
    (start_line/end_line, 1-based, inclusive). A file, or the part asked for, larger than the server's
    read cap is refused with its size: ask for fewer lines. Binary (non-UTF-8) files, directories,
    devices, FIFOs, sockets and files with several hard links are refused.
    """
    limits = ctx.state.limits
    # Resolving and opening take a few system calls: done here; the size that decides where the data
    # is read comes from fstat on the descriptor just opened, never from another look at the path.
    opened = operations.open_for_reading(ctx.state.sandbox, args.path)
    read = functools.partial(
        operations.read_opened,
        opened,
        args.path,
        limits,
        head=args.head,
        tail=args.tail,
        start_line=args.start_line,
        end_line=args.end_line,
    )
    if opened.size <= INLINE_READ_BYTES:
        return read()
    return await _in_thread(ctx, read, if_never_run=opened.close)


class FileVariables(BaseModel):
    path: str


@service.resource_template("file://{+path}", name="file", title="A file under an allowed root")
async def file_resource(variables: FileVariables, ctx: Context) -> TextResource | BlobResource:
    """A file inside an allowed root, by its absolute path (file:///srv/data/notes.md): text when it is
    UTF-8, else bytes, with the MIME type its name suggests; at most FILESYSTEM_MAX_READ_BYTES."""
    opened = operations.open_for_reading(ctx.state.sandbox, variables.path)
    read = functools.partial(operations.read_bytes, opened, variables.path, ctx.state.limits)
    data = (
        read() if opened.size <= INLINE_READ_BYTES else await _in_thread(ctx, read, if_never_run=opened.close)
    )
    guessed = mimetypes.guess_type(variables.path)[0]
    try:
        return TextResource(data.decode("utf-8"), guessed or "text/plain")
    except UnicodeDecodeError:
        return BlobResource(data, guessed or "application/octet-stream")


@service.tool(title="Write a text file", destructive=True, idempotent=True)
async def write_file(args: WriteFileArgs, ctx: Context) -> WriteFileResult:
    """Create a file, or replace its whole content, in a read-write root.

    The write is atomic: readers see the old content or the new one, never a part (the text goes to a
    temporary file in the same directory, is flushed to disk, then renamed over the file). Missing
    parent directories are created only with create_parents=true. Content larger than the server's
    write cap, read-only roots, directories and special files are refused.
    """
    return await _in_thread(
        ctx,
        functools.partial(
            operations.write_file,
            ctx.state.sandbox,
            args.path,
            args.content,
            ctx.state.limits,
            create_parents=args.create_parents,
        ),
    )


@service.tool(title="List a directory", read_only=True, idempotent=True)
async def list_directory(args: ListDirectoryArgs, ctx: Context) -> ListDirectoryResult:
    """List a directory: each entry's type, size and modification time (ISO 8601, UTC).

    depth=1 lists the directory itself, depth=2 also its subdirectories, and so on. Entries come in
    name order, depth first, `limit` per page; pass next_cursor back as `cursor` for the next page.
    Symbolic links are listed as symlinks and never entered. A listing walks at most
    FILESYSTEM_LIST_MAX_ENTRIES entries (earlier pages included) within FILESYSTEM_SEARCH_TIMEOUT_S,
    and says truncated when it stopped there: list a deeper directory or a smaller depth.
    """
    return await _in_thread(
        ctx,
        functools.partial(
            operations.list_directory,
            ctx.state.sandbox,
            args.path,
            depth=args.depth,
            limit=args.limit,
            cursor=args.cursor,
            time_budget_s=ctx.state.limits.search_time_budget_s,
            max_entries=ctx.state.limits.list_max_entries,
        ),
    )


@service.tool(title="Create a directory", destructive=False, idempotent=True)
async def create_directory(args: CreateDirectoryArgs, ctx: Context) -> CreateDirectoryResult:
    """Create a directory in a read-write root, with any missing parents (like mkdir -p).

    Succeeds, with created=false, when the directory already exists.
    """
    path, created = await _in_thread(
        ctx, functools.partial(operations.create_directory, ctx.state.sandbox, args.path)
    )
    return CreateDirectoryResult(path=path, created=created)


@service.tool(title="Describe a file", read_only=True, idempotent=True)
async def get_file_info(args: GetFileInfoArgs, ctx: Context) -> FileInfo:
    """Describe a file or directory: type, size, times (ISO 8601, UTC), permissions, hard links, and
    whether the tools may change it."""
    return operations.get_file_info(ctx.state.sandbox, args.path)  # a few system calls: on the event loop


@service.tool(title="Search for files by name", read_only=True, idempotent=True)
async def search_files(args: SearchFilesArgs, ctx: Context) -> SearchFilesResult:
    """Find files and directories whose path (relative to `path`) matches a glob pattern.

    `*.md` matches in `path` itself, `**/*.md` at any depth, `src/**/test_*.py` under src. The search
    never follows symbolic links, stops at max_results (and the server's cap) and at a time and entry
    budget (FILESYSTEM_SEARCH_TIMEOUT_S, FILESYSTEM_SEARCH_MAX_ENTRIES), and says so in
    truncated_reason. Patterns may not start with / or contain '..', and are refused, naming the
    limit, past the server's caps on length, segments, `**` segments, wildcards and {a,b}
    alternatives (FILESYSTEM_MAX_PATTERN_LENGTH, FILESYSTEM_MAX_GLOB_*; defaults 1024, 32, 8, 64, 64).
    """
    return await _in_thread(
        ctx,
        functools.partial(
            operations.search_files,
            ctx.state.sandbox,
            args.path,
            args.pattern,
            ctx.state.limits,
            exclude_patterns=args.exclude_patterns,
            max_results=args.max_results,
        ),
    )


@service.tool(title="Move or rename", destructive=True)
async def move_file(args: MoveFileArgs, ctx: Context) -> MoveFileResult:
    """Move or rename a file or directory; both paths must be in read-write roots.

    An existing destination is refused unless overwrite=true. The destination's parent directory must
    exist. A symbolic link is moved as a link. Moving between different file systems is not supported.
    """
    return await _in_thread(
        ctx,
        functools.partial(
            operations.move_file, ctx.state.sandbox, args.source, args.destination, overwrite=args.overwrite
        ),
    )


@service.tool(title="List the allowed roots", read_only=True, idempotent=True)
async def list_allowed_roots(ctx: Context) -> ListAllowedRootsResult:
    """List the directories this server may use, each read-only (ro) or read-write (rw).

    Relative paths in the other tools start at the first root.
    """
    return operations.list_allowed_roots(ctx.state.sandbox)  # one stat per root: on the event loop


@service.health_check("roots")
async def roots(ctx: CheckContext[FilesystemSettings, FilesystemState]) -> CheckResult:
    """Each root exists and is a directory."""
    settings = ctx.settings
    # Not in the tools' pool: /health must answer even while searches fill it.
    problems = await asyncio.to_thread(operations.root_problems, settings.allowed_paths)
    if problems:
        return CheckResult("down", "; ".join(problems))
    return CheckResult("ok", ", ".join(f"{root.path} ({root.mode})" for root in settings.allowed_paths))
