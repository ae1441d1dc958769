"""Settings of the github service (variables and defaults as in config/services.yaml)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from libmcp import CommaList, ServiceSettings

READ_TOOLS = (
    "search_repositories",
    "get_repository",
    "list_issues",
    "get_issue",
    "get_file_contents",
)
WRITE_TOOLS = ("create_issue",)
TOOL_NAMES = READ_TOOLS + WRITE_TOOLS
"""Every tool the service defines; ``GITHUB_TOOLS`` may only name these."""


class GithubSettings(ServiceSettings):
    """``GITHUB_TOKEN``, ``GITHUB_API_URL``, ``GITHUB_ALLOW_WRITE``, ``GITHUB_TOOLS`` and the limits."""

    github_token: str = Field(default="", repr=False, description="Personal access or app token.")
    github_api_url: str = Field(
        default="https://api.github.com", description="API base URL (GitHub Enterprise: https://HOST/api/v3)."
    )
    github_allow_write: bool = Field(default=False, description="List and allow write tools (create_issue).")
    github_tools: CommaList = Field(
        default_factory=list, description="Comma-separated tool names to list; empty lists all allowed."
    )
    github_max_concurrency: int = Field(default=4, ge=1, le=64, description="Concurrent GitHub API calls.")
    github_max_file_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest file get_file_contents returns."
    )

    @field_validator("github_api_url")
    @classmethod
    def _http_url_without_credentials(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://api.github.com")
        if parts.username or parts.password:
            # The token goes in GITHUB_TOKEN, where it is kept out of logs and messages.
            raise ValueError("must not carry credentials; put the token in GITHUB_TOKEN")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.strip().rstrip("/")

    @field_validator("github_tools")
    @classmethod
    def _known_tools(cls, value: list[str], info: ValidationInfo) -> list[str]:
        unknown = [name for name in value if name not in TOOL_NAMES]
        if unknown:
            raise ValueError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(TOOL_NAMES)}")
        if not info.data.get("github_allow_write", False):
            writes = [name for name in value if name in WRITE_TOOLS]
            if writes:
                raise ValueError(f"names write tool(s) {', '.join(writes)} but GITHUB_ALLOW_WRITE is false")
        return value

    def lists_tool(self, name: str) -> bool:
        """Whether this deployment lists (and accepts calls to) the tool ``name``."""
        if name in WRITE_TOOLS and not self.github_allow_write:
            return False
        return not self.github_tools or name in self.github_tools
