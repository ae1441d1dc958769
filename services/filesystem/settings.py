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
        default="./workspace:rw",  # type: ignore[assignment]
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

    @field_validator("allowed_paths", mode="before")
    @classmethod
    def _parse_allowed_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_roots(value)
        return value
