"""The postgres service's settings (the ``postgres`` block of ``config/services.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from libmcp import ServiceSettings


class PostgresSettings(ServiceSettings):
    """Where the database is and how much a caller may do with it."""

    database_url: str = Field(default="", repr=False, description="libpq URL of the database.")
    postgres_access_mode: Literal["read-only", "read-write"] = Field(
        default="read-only", description="read-only runs every statement in a READ ONLY transaction."
    )
    postgres_statement_timeout_s: float = Field(default=15, gt=0, description="Statement timeout in seconds.")
    postgres_max_rows: int = Field(default=1000, ge=1, description="Default row cap of execute_sql.")
    postgres_pool_max_size: int = Field(default=5, ge=1, le=100, description="Connections per database pool.")
    postgres_max_result_bytes: int = Field(
        default=0,
        ge=0,
        description=(
            "Byte budget of one execute_sql result as JSON; 0 (the default) is a third of "
            "MCP_MAX_REPLY_BYTES, which also caps a larger value (a reply carries the result twice)."
        ),
    )

    @property
    def read_only(self) -> bool:
        return self.postgres_access_mode == "read-only"
