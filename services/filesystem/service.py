"""The filesystem service: read, write, list, search and move files inside the allowed roots.

Every path is checked by :mod:`services.filesystem.sandbox` before use; the blocking work lives in
:mod:`services.filesystem.operations` and runs in worker threads.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version

from libmcp import CheckResult, Service, StartupContext, ToolContext
from services.filesystem import operations
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

VERSION = version("mcp-sse")
SEARCH_TIME_BUDGET_S = 10.0

service = Service(
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


def _sandbox(ctx: ToolContext) -> Sandbox:
    sandbox: Sandbox = ctx.state.sandbox
    return sandbox


def _limits(ctx: ToolContext) -> operations.Limits:
    settings: FilesystemSettings = ctx.settings
    return operations.Limits(
        max_read_bytes=settings.filesystem_max_read_bytes,
        max_write_bytes=settings.filesystem_max_write_bytes,
        max_search_results=settings.filesystem_max_search_results,
        # Stop searching well before the tool timeout, so a partial answer arrives instead of a timeout.
        search_time_budget_s=min(SEARCH_TIME_BUDGET_S, ctx.server_settings.tool_timeout_s * 0.5),
    )


@service.on_startup
async def open_sandbox(ctx: StartupContext) -> None:
    settings: FilesystemSettings = ctx.settings
    ctx.state.sandbox = Sandbox(settings.allowed_paths)


@service.tool(title="Read a text file", read_only=True, idempotent=True)
async def read_file(args: ReadFileArgs, ctx: ToolContext) -> ReadFileResult:
    """Read a UTF-8 text file inside an allowed root.

    Returns the whole file, or only the first lines (head), the last lines (tail) or a range
    (start_line/end_line, 1-based, inclusive). A file, or the part asked for, larger than the server's
    read cap is refused with its size: ask for fewer lines. Binary (non-UTF-8) files, directories,
    devices, FIFOs, sockets and files with several hard links are refused.
    """
    return await asyncio.to_thread(
        operations.read_file,
        _sandbox(ctx),
        args.path,
        _limits(ctx),
        head=args.head,
        tail=args.tail,
        start_line=args.start_line,
        end_line=args.end_line,
    )


@service.tool(title="Write a text file", destructive=True, idempotent=True)
async def write_file(args: WriteFileArgs, ctx: ToolContext) -> WriteFileResult:
    """Create a file, or replace its whole content, in a read-write root.

    The write is atomic: readers see the old content or the new one, never a part (the text goes to a
    temporary file in the same directory, is flushed to disk, then renamed over the file). Missing
    parent directories are created only with create_parents=true. Content larger than the server's
    write cap, read-only roots, directories and special files are refused.
    """
    return await asyncio.to_thread(
        operations.write_file,
        _sandbox(ctx),
        args.path,
        args.content,
        _limits(ctx),
        create_parents=args.create_parents,
    )


@service.tool(title="List a directory", read_only=True, idempotent=True)
async def list_directory(args: ListDirectoryArgs, ctx: ToolContext) -> ListDirectoryResult:
    """List a directory: each entry's type, size and modification time (ISO 8601, UTC).

    depth=1 lists the directory itself, depth=2 also its subdirectories, and so on. Entries come in
    name order, depth first, `limit` per page; pass next_cursor back as `cursor` for the next page.
    Symbolic links are listed as symlinks and never entered.
    """
    return await asyncio.to_thread(
        operations.list_directory,
        _sandbox(ctx),
        args.path,
        depth=args.depth,
        limit=args.limit,
        cursor=args.cursor,
        time_budget_s=_limits(ctx).search_time_budget_s,
    )


@service.tool(title="Create a directory", destructive=False, idempotent=True)
async def create_directory(args: CreateDirectoryArgs, ctx: ToolContext) -> CreateDirectoryResult:
    """Create a directory in a read-write root, with any missing parents (like mkdir -p).

    Succeeds, with created=false, when the directory already exists.
    """
    path, created = await asyncio.to_thread(operations.create_directory, _sandbox(ctx), args.path)
    return CreateDirectoryResult(path=path, created=created)


@service.tool(title="Describe a file", read_only=True, idempotent=True)
async def get_file_info(args: GetFileInfoArgs, ctx: ToolContext) -> FileInfo:
    """Describe a file or directory: type, size, times (ISO 8601, UTC), permissions, hard links, and
    whether the tools may change it."""
    return await asyncio.to_thread(operations.get_file_info, _sandbox(ctx), args.path)


@service.tool(title="Search for files by name", read_only=True, idempotent=True)
async def search_files(args: SearchFilesArgs, ctx: ToolContext) -> SearchFilesResult:
    """Find files and directories whose path (relative to `path`) matches a glob pattern.

    `*.md` matches in `path` itself, `**/*.md` at any depth, `src/**/test_*.py` under src. The search
    never follows symbolic links, stops at max_results (and the server's cap) and at a time and entry
    budget, and says so in truncated_reason. Patterns may not start with / or contain '..'.
    """
    return await asyncio.to_thread(
        operations.search_files,
        _sandbox(ctx),
        args.path,
        args.pattern,
        _limits(ctx),
        exclude_patterns=args.exclude_patterns,
        max_results=args.max_results,
    )


@service.tool(title="Move or rename", destructive=True)
async def move_file(args: MoveFileArgs, ctx: ToolContext) -> MoveFileResult:
    """Move or rename a file or directory; both paths must be in read-write roots.

    An existing destination is refused unless overwrite=true. The destination's parent directory must
    exist. A symbolic link is moved as a link. Moving between different file systems is not supported.
    """
    return await asyncio.to_thread(
        operations.move_file, _sandbox(ctx), args.source, args.destination, overwrite=args.overwrite
    )


@service.tool(title="List the allowed roots", read_only=True, idempotent=True)
async def list_allowed_roots(ctx: ToolContext) -> ListAllowedRootsResult:
    """List the directories this server may use, each read-only (ro) or read-write (rw).

    Relative paths in the other tools start at the first root.
    """
    return await asyncio.to_thread(operations.list_allowed_roots, _sandbox(ctx))


@service.health_check("roots")
async def roots(ctx: StartupContext) -> CheckResult:
    """Each root exists and is a directory."""
    settings: FilesystemSettings = ctx.settings
    problems = await asyncio.to_thread(operations.root_problems, settings.allowed_paths)
    if problems:
        return CheckResult("down", "; ".join(problems))
    return CheckResult("ok", ", ".join(f"{root.path} ({root.mode})" for root in settings.allowed_paths))
