"""Settings of the filesystem service (variables and defaults as in config/services.yaml)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from libmcp import ServiceSettings
from services.filesystem.sandbox import Root, parse_roots


class FilesystemSettings(ServiceSettings):
    """Roots and limits.

    ``ALLOWED_PATHS`` is a comma-separated list of ``PATH:ro`` or ``PATH:rw`` entries. A path written
    without a suffix is read-only (the safe default). Relative paths are taken from the working directory
    at start-up; each root is made absolute and its own symbolic links are resolved once, then.
    """

    allowed_paths: Annotated[tuple[Root, ...], NoDecode] = Field(
        default="./workspace:rw",
        validate_default=True,
        description="Comma-separated roots, each PATH:ro or PATH:rw.",
    )
    filesystem_max_read_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest file read_file returns."
    )
    filesystem_max_write_bytes: int = Field(
        default=10_485_760, gt=0, description="Largest content write_file accepts."
    )
    filesystem_max_search_results: int = Field(default=1000, gt=0, description="Cap on search_files matches.")
    filesystem_search_max_entries: int = Field(
        default=200_000, gt=0, description="Directory entries one search_files call looks at before it stops."
    )
    filesystem_list_max_entries: int = Field(
        default=100_000,
        gt=0,
        description="Directory entries one list_directory call walks (earlier pages included) before it "
        "stops and says truncated.",
    )
    filesystem_search_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Time one search_files or list_directory call walks before it stops (at most half of "
        "MCP_TOOL_TIMEOUT_S).",
    )
    filesystem_max_pattern_length: int = Field(
        default=1024, gt=0, le=65_536, description="Longest search_files pattern, in characters."
    )
    filesystem_max_glob_segments: int = Field(
        default=32, gt=0, le=1024, description="Most /-separated segments in one search_files pattern."
    )
    filesystem_max_glob_double_stars: int = Field(
        default=8, gt=0, le=1024, description="Most ** segments in one search_files pattern."
    )
    filesystem_max_glob_wildcards: int = Field(
        default=64,
        gt=0,
        le=65_536,
        description="Most wildcards (*, ?, [...]) in one search_files pattern, over all its {a,b} "
        "alternatives.",
    )
    filesystem_max_glob_alternatives: int = Field(
        default=64,
        gt=0,
        le=4096,
        description="Most alternatives one search_files pattern expands {a,b} into.",
    )
    filesystem_worker_threads: int = Field(
        default=8,
        gt=0,
        le=1024,
        description="Threads for blocking work (writes, large reads, listings, searches); one client gets "
        "MCP_CLIENT_SHARE of them.",
    )

    @field_validator("allowed_paths", mode="before")
    @classmethod
    def _parse_allowed_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_roots(value)
        return value
