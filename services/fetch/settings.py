"""The fetch service's settings (the ``fetch`` block of config/services.yaml)."""

from __future__ import annotations

from pydantic import Field

from libmcp import CommaList, ServiceSettings

DEFAULT_USER_AGENT = "mcp-sse-fetch/0.1 (+https://modelcontextprotocol.io)"


class FetchSettings(ServiceSettings):
    """What the fetch service may reach and how much it reads."""

    fetch_allow_write_methods: bool = False
    fetch_allowed_hosts: CommaList = Field(default_factory=list)
    fetch_allow_private: bool = False
    fetch_ignore_robots: bool = False
    fetch_user_agent: str = DEFAULT_USER_AGENT
    fetch_timeout_s: float = Field(default=30.0, gt=0)
    fetch_max_response_bytes: int = Field(default=10_485_760, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0, le=50)
    fetch_max_convert_bytes: int = Field(
        default=1_048_576,
        gt=0,
        description="Largest body converted to markdown (HTML) or re-indented (JSON); past it, HTML is "
        "converted up to it and JSON returned as sent, with a note.",
    )
    fetch_convert_memory_mb: int = Field(
        default=256,
        ge=32,
        le=65_536,
        description="Memory one conversion process may use (its address space, in MiB); a page that needs "
        "more gets an error naming this setting.",
    )
    fetch_convert_processes: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Large bodies converted at once, each in a short-lived process of its own; one client "
        "gets MCP_CLIENT_SHARE of them.",
    )
