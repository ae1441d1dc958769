"""Arguments and results of the filesystem tools."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from libmcp import ToolInput, ToolOutput
from libmcp.tools import EncodedText
from services.filesystem.sandbox import EntryType

PATH_HELP = (
    "Absolute path inside an allowed root, or a path relative to the first root (see list_allowed_roots)."
)


# read_file -------------------------------------------------------------------------------------


class ReadFileArgs(ToolInput):
    path: str = Field(description=f"The text file to read. {PATH_HELP}")
    head: int | None = Field(default=None, ge=1, description="Return only the first N lines.")
    tail: int | None = Field(default=None, ge=1, description="Return only the last N lines.")
    start_line: int | None = Field(
        default=None, ge=1, description="First line to return (1-based); use with end_line for a range."
    )
    end_line: int | None = Field(default=None, ge=1, description="Last line to return (1-based, inclusive).")

    @model_validator(mode="after")
    def _one_selection(self) -> ReadFileArgs:
        if self.head is None and self.tail is None and self.start_line is None and self.end_line is None:
            return self  # the whole file: the common call, answered without building the list below
        chosen = [
            name
            for name, used in (
                ("head", self.head is not None),
                ("tail", self.tail is not None),
                ("start_line/end_line", self.start_line is not None or self.end_line is not None),
            )
            if used
        ]
        if len(chosen) > 1:
            raise ValueError(f"use only one of head, tail or start_line/end_line (got {', '.join(chosen)})")
        if self.start_line is not None and self.end_line is not None and self.end_line < self.start_line:
            raise ValueError("end_line must not be smaller than start_line")
        return self


class ReadFileResult(ToolOutput):
    path: str = Field(description="Canonical absolute path of the file read.")
    # Held as its JSON encoding, made from the file's bytes without decoding them (see EncodedText).
    content: EncodedText = Field(description="The text returned (the whole file or the lines selected).")
    size_bytes: int = Field(description="Size of the whole file in bytes.")
    start_line: int | None = Field(
        description="Number of the first line returned (1-based); null when no line was returned or, for a "
        "tail of a file too large to read whole, when it is unknown."
    )
    end_line: int | None = Field(description="Number of the last line returned; null like start_line.")
    total_lines: int | None = Field(description="Lines in the file, when the whole file was read.")

    def mcp_text(self) -> EncodedText:
        return self.content


# write_file ------------------------------------------------------------------------------------


class WriteFileArgs(ToolInput):
    path: str = Field(description=f"The file to create or replace. {PATH_HELP}")
    content: str = Field(description="The complete new text of the file (UTF-8).")
    create_parents: bool = Field(default=False, description="Create missing parent directories.")


class WriteFileResult(ToolOutput):
    path: str = Field(description="Canonical absolute path of the file written.")
    bytes_written: int = Field(description="Size of the new file in bytes.")
    created: bool = Field(description="True when the file did not exist before.")

    def mcp_text(self) -> str:
        verb = "Created" if self.created else "Replaced"
        return f"{verb} {self.path} ({self.bytes_written} bytes)"


# list_directory --------------------------------------------------------------------------------


class ListDirectoryArgs(ToolInput):
    path: str = Field(default=".", description=f"The directory to list. {PATH_HELP}")
    depth: int = Field(
        default=1,
        ge=1,
        le=16,
        description="1 lists the directory itself; 2 also its subdirectories, and so on.",
    )
    limit: int = Field(default=200, ge=1, le=1000, description="Entries per page.")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page, to continue.")


class DirectoryEntry(ToolOutput):
    name: str = Field(description="Path relative to the listed directory.")
    path: str = Field(description="Canonical absolute path.")
    type: EntryType = Field(description="Entry type; symbolic links are reported, not followed.")
    size_bytes: int = Field(description="Size in bytes (for a symbolic link, the length of its target).")
    modified: str = Field(description="Last modification time, ISO 8601 in UTC.")


class ListDirectoryResult(ToolOutput):
    path: str = Field(description="Canonical absolute path of the directory listed.")
    entries: list[DirectoryEntry] = Field(description="Entries in name order, depth first.")
    next_cursor: str | None = Field(description="Pass as cursor to get the next page; null on the last page.")
    truncated: bool = Field(
        description="True when the scan stopped at its entry or time budget (FILESYSTEM_LIST_MAX_ENTRIES, "
        "FILESYSTEM_SEARCH_TIMEOUT_S)."
    )

    def mcp_text(self) -> str:
        lines = [f"{self.path}:"]
        for entry in self.entries:
            suffix = "/" if entry.type == "directory" else ""
            size = "" if entry.type == "directory" else f"  {entry.size_bytes} B"
            lines.append(f"[{entry.type}] {entry.name}{suffix}{size}  {entry.modified}")
        if not self.entries:
            lines.append("(empty)")
        if self.next_cursor:
            lines.append(f"(more entries: call again with cursor={self.next_cursor})")
        if self.truncated:
            lines.append(
                "(listing stopped at its scan budget, FILESYSTEM_LIST_MAX_ENTRIES or "
                "FILESYSTEM_SEARCH_TIMEOUT_S; list a smaller directory or a lower depth)"
            )
        return "\n".join(lines)


# create_directory ------------------------------------------------------------------------------


class CreateDirectoryArgs(ToolInput):
    path: str = Field(description=f"The directory to create, with any missing parents. {PATH_HELP}")


class CreateDirectoryResult(ToolOutput):
    path: str = Field(description="Canonical absolute path of the directory.")
    created: bool = Field(description="False when it already existed.")

    def mcp_text(self) -> str:
        return f"{'Created' if self.created else 'Already exists'}: {self.path}"


# get_file_info ---------------------------------------------------------------------------------


class GetFileInfoArgs(ToolInput):
    path: str = Field(description=f"The file or directory to describe. {PATH_HELP}")


class FileInfo(ToolOutput):
    path: str = Field(description="Canonical absolute path.")
    type: EntryType = Field(description="Entry type.")
    size_bytes: int = Field(description="Size in bytes.")
    modified: str = Field(description="Last modification time, ISO 8601 in UTC.")
    accessed: str = Field(description="Last access time, ISO 8601 in UTC.")
    changed: str = Field(description="Last status change time (ctime), ISO 8601 in UTC.")
    permissions: str = Field(description="Permission bits in octal, e.g. 0644.")
    links: int = Field(description="Number of hard links.")
    writable: bool = Field(description="True when the tools may change it (its root is read-write).")


# search_files ----------------------------------------------------------------------------------


class SearchFilesArgs(ToolInput):
    path: str = Field(default=".", description=f"The directory to search under. {PATH_HELP}")
    pattern: str = Field(
        description=(
            "Glob matched against paths relative to `path`: `*` and `?` stay within one name, `**` spans "
            "directories, `[abc]` and `{a,b}` choose. Use `*.py` for this directory, `**/*.py` for all "
            "subdirectories. `*` also matches names starting with a dot."
        )
    )
    exclude_patterns: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Globs of paths to skip (matched against the relative path and against the bare name); "
        "a skipped directory is not entered.",
    )
    max_results: int | None = Field(
        default=None, ge=1, description="Stop after this many matches (never more than the server's cap)."
    )


class SearchMatch(ToolOutput):
    path: str = Field(description="Canonical absolute path of the match.")
    type: EntryType = Field(description="Entry type.")


class SearchFilesResult(ToolOutput):
    path: str = Field(description="Canonical absolute path of the directory searched.")
    pattern: str = Field(description="The pattern searched for.")
    matches: list[SearchMatch] = Field(description="Matches in name order, depth first.")
    truncated: bool = Field(description="True when the search stopped early (see truncated_reason).")
    truncated_reason: str | None = Field(description="Why the search stopped early, if it did.")
    entries_scanned: int = Field(description="Directory entries looked at.")

    def mcp_text(self) -> str:
        lines = [match.path for match in self.matches] or [
            f"No matches for {self.pattern!r} under {self.path}"
        ]
        if self.truncated_reason:
            lines.append(f"(search stopped early: {self.truncated_reason})")
        return "\n".join(lines)


# move_file -------------------------------------------------------------------------------------


class MoveFileArgs(ToolInput):
    source: str = Field(description=f"The file or directory to move or rename. {PATH_HELP}")
    destination: str = Field(description=f"Its new path (the parent directory must exist). {PATH_HELP}")
    overwrite: bool = Field(default=False, description="Replace an existing destination (refused otherwise).")


class MoveFileResult(ToolOutput):
    source: str = Field(description="Canonical absolute path it had.")
    destination: str = Field(description="Canonical absolute path it has now.")
    type: EntryType = Field(description="Type of what was moved.")
    replaced: bool = Field(description="True when an existing destination was replaced.")

    def mcp_text(self) -> str:
        return f"Moved {self.source} to {self.destination}" + (" (replaced it)" if self.replaced else "")


# list_allowed_roots ----------------------------------------------------------------------------


class AllowedRoot(ToolOutput):
    path: str = Field(description="Absolute path of the root.")
    mode: Literal["ro", "rw"] = Field(description="ro: read-only; rw: read-write.")
    available: bool = Field(description="True when the root exists and is a directory.")


class ListAllowedRootsResult(ToolOutput):
    roots: list[AllowedRoot] = Field(description="The roots, in configuration order.")
    relative_paths_start_at: str = Field(
        description="Relative paths are resolved from this root (the first)."
    )

    def mcp_text(self) -> str:
        lines = [
            f"{root.path} ({root.mode}{'' if root.available else ', unavailable'})" for root in self.roots
        ]
        return "\n".join([*lines, f"Relative paths start at {self.relative_paths_start_at}."])
