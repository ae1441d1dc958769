"""Arguments and results of the fetch tools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from libmcp import ToolInput, ToolOutput

ContentKind = Literal["html", "json", "text", "binary"]
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class FetchArgs(ToolInput):
    url: str = Field(description="URL to fetch (http or https).", min_length=1, max_length=8192)
    max_length: int = Field(
        default=5000, ge=1, le=1_000_000, description="Maximum number of characters to return."
    )
    start_index: int = Field(
        default=0,
        ge=0,
        description="Return output starting at this character index, to continue a fetch that was truncated.",
    )
    raw: bool = Field(
        default=False,
        description="Return the page as the server sent it (HTML source, JSON as is) instead of markdown.",
    )


class _Paged(ToolOutput):
    """Fields every result that pages its content through ``start_index`` carries."""

    url: str = Field(description="The URL asked for.")
    final_url: str = Field(description="The URL answered from, after redirects.")
    status: int = Field(description="HTTP status code of the final response.")
    content_type: str = Field(description="Content-Type header of the final response ('' when absent).")
    kind: ContentKind = Field(description="How the body was read: html (as markdown), json, text or binary.")
    title: str | None = Field(default=None, description="The HTML page's title.")
    truncated: bool = Field(description="True when more content follows; call again with next_start_index.")
    start_index: int = Field(description="Character index of this chunk in the converted content.")
    next_start_index: int | None = Field(description="start_index of the next chunk, or null at the end.")
    total_length: int = Field(description="Length in characters of the whole converted content.")
    response_bytes: int = Field(description="Size of the (decompressed) body read, in bytes.")
    body_truncated: bool = Field(
        description="True when the response was larger than FETCH_MAX_RESPONSE_BYTES and was cut there."
    )
    max_response_bytes: int = Field(description="The response size cap in force.")
    conversion_limited: bool = Field(
        default=False,
        description="True when the body was larger than FETCH_MAX_CONVERT_BYTES: HTML was converted only "
        "up to it, JSON is as sent (not re-indented). raw=true returns the whole body.",
    )
    max_convert_bytes: int | None = Field(default=None, description="The conversion size cap in force.")

    def _notes(self, tool: str, chunk: str) -> str:
        if self.start_index >= self.total_length and self.total_length > 0:
            return "<error>No more content available.</error>"
        text = chunk
        if self.next_start_index is not None:
            text += (
                f"\n\n<error>Content truncated. Call the {tool} tool with a start_index of "
                f"{self.next_start_index} to get more content.</error>"
            )
        elif self.conversion_limited and self.kind == "html":
            text += (
                f"\n\n<error>The page is larger than {self.max_convert_bytes:,} bytes "
                "(FETCH_MAX_CONVERT_BYTES): only that much of it was converted, the content ends there. "
                f"Call the {tool} tool with raw=true for the whole page source.</error>"
            )
        elif self.body_truncated:
            text += (
                f"\n\n<error>The response was larger than {self.max_response_bytes:,} bytes and was cut "
                "there: the content ends at the cut.</error>"
            )
        return text


class FetchResult(_Paged):
    content: str = Field(description="This chunk of the converted content.")

    def mcp_text(self) -> str:
        """What the reference fetch server returns: the chunk, with a line naming the next start_index."""
        return f"Contents of {self.url}:\n{self._notes('fetch', self.content)}"


class HttpRequestArgs(ToolInput):
    url: str = Field(description="URL to request (http or https).", min_length=1, max_length=8192)
    method: Method = Field(
        default="GET",
        description="HTTP method. POST, PUT, PATCH and DELETE need FETCH_ALLOW_WRITE_METHODS=true.",
    )
    headers: dict[str, str] | None = Field(
        default=None, description='Request headers, e.g. {"Accept": "application/json"}.'
    )
    body: str | None = Field(
        default=None, description="Request body as text (UTF-8). Not together with json."
    )
    json_body: Any = Field(
        default=None,
        alias="json",
        description="Request body as JSON (sets Content-Type: application/json). Not together with body.",
    )
    timeout: float | None = Field(
        default=None, gt=0, description="Timeout in seconds for the whole request; at most FETCH_TIMEOUT_S."
    )
    raw: bool = Field(
        default=False, description="Return the body as sent (no HTML-to-markdown, no JSON re-indenting)."
    )
    max_length: int = Field(
        default=5000, ge=1, le=1_000_000, description="Maximum number of characters of the body to return."
    )
    start_index: int = Field(
        default=0,
        ge=0,
        description="Return the body starting at this character index, to continue a long one.",
    )


class HttpRequestResult(_Paged):
    method: Method = Field(description="The method of the request sent.")
    reason: str = Field(description="HTTP reason phrase.")
    headers: dict[str, str] = Field(description="Response headers (repeated headers joined with ', ').")
    body: str = Field(description="This chunk of the body, converted like fetch unless raw.")

    def mcp_text(self) -> str:
        lines = [f"HTTP {self.status} {self.reason}".rstrip(), f"URL: {self.final_url}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return "\n".join(lines) + "\n\n" + self._notes("http_request", self.body)
