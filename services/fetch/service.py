"""The fetch service: ``fetch`` (a page as markdown) and ``http_request`` (any request), safe by default."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from libmcp import CheckContext, CheckResult, Service, StartupContext, ToolContext, ToolError
from libmcp.fairness import share_of
from services.fetch.client import FetchClient, FetchedResponse, FetchError
from services.fetch.conversions import Converter, Deadline
from services.fetch.convert import Converted, classify
from services.fetch.guard import Guard, GuardPolicy
from services.fetch.models import (
    WRITE_METHODS,
    FetchArgs,
    FetchResult,
    HttpRequestArgs,
    HttpRequestResult,
)
from services.fetch.robots import RobotsPolicy
from services.fetch.settings import FetchSettings

VERSION = version("mcp-sse")

# Headers the client sets itself: a caller's value would break the framing, the target, or the
# decompression guard (which reads gzip and deflate only).
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive",
     "accept-encoding", "proxy-authorization", "proxy-connection"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FetchState:
    """One pooled client, one robots.txt cache and one converter for the whole service."""

    client: FetchClient
    robots: RobotsPolicy
    converter: Converter


service: Service[FetchSettings, FetchState] = Service(
    "fetch",
    version=VERSION,
    title="Fetch",
    instructions=(
        "fetch reads a web page as markdown (JSON pretty-printed, text as is), in chunks: when a result "
        "says it was truncated, call again with the start_index it names. http_request sends any HTTP "
        "request and shows status, headers and body. Private, loopback and cloud-metadata addresses are "
        "refused unless the operator opened them."
    ),
    settings_class=FetchSettings,
)
Context = ToolContext[FetchSettings, FetchState]


# RFC 9110: a field name is a token; values here are limited to visible ASCII, space and tab.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


@service.tool(title="Fetch a URL as markdown", read_only=True, idempotent=True, open_world=True)
async def fetch(args: FetchArgs, ctx: Context) -> FetchResult:
    """Fetches a URL from the internet and extracts its contents as markdown.

    HTML is reduced to the page's main content (no navigation, ads, scripts) and converted to
    markdown; JSON is pretty-printed; text comes back as is; binary content (images, PDFs, archives)
    is described by type and size, not shown. At most max_length characters come back per call: when
    the content is longer, the result ends with a line giving the start_index to call again with.
    raw=true returns the HTML source instead of markdown. robots.txt is honoured. Errors (DNS failure,
    connection refused, timeout, TLS, HTTP status >= 400, robots.txt refusal, a private or metadata
    address refused by the SSRF guard, a decompression bomb) come back as an error result saying which.
    Converting runs within the same time limit as the request (FETCH_TIMEOUT_S); a page larger than
    FETCH_MAX_CONVERT_BYTES is converted up to that size, with a note (raw=true returns all of it).
    """
    settings, client, robots = ctx.settings, ctx.state.client, ctx.state.robots
    deadline = _deadline(ctx, settings.fetch_timeout_s, "FETCH_TIMEOUT_S")
    try:
        response = await client.request(
            "GET", args.url, before_hop=None if settings.fetch_ignore_robots else robots.check
        )
    except FetchError as exc:
        raise ToolError(exc.message) from None
    if response.status >= 400:
        raise ToolError(f"Failed to fetch {args.url} - status code {response.status}")
    converted = await _convert(ctx, response, raw=args.raw, deadline=deadline)
    chunk, next_start = _page(converted.text, args.start_index, args.max_length)
    return FetchResult(
        **_common(args.url, response, converted, args.start_index, next_start, settings),
        content=chunk,
    )


@service.tool(
    title="Send an HTTP request", read_only=False, destructive=True, idempotent=False, open_world=True
)
async def http_request(args: HttpRequestArgs, ctx: Context) -> HttpRequestResult:
    """Sends an HTTP request (GET, HEAD, POST, PUT, PATCH or DELETE) and returns status, headers and body.

    The body is converted like fetch (HTML to markdown, JSON pretty-printed, binary described)
    unless raw=true, and paged by max_length/start_index the same way. POST, PUT, PATCH and DELETE
    are refused unless the server runs with FETCH_ALLOW_WRITE_METHODS=true. Give the body as text
    (body) or as JSON (json), not both. Redirects are followed (each hop checked by the SSRF guard);
    robots.txt is not consulted. An HTTP error status is a normal result; network failures (DNS,
    refused, timeout, TLS), guard refusals and decompression bombs are error results saying which.
    Conversion shares the request's time limit and FETCH_MAX_CONVERT_BYTES bound, like fetch.
    """
    settings, client = ctx.settings, ctx.state.client
    if args.timeout is not None and args.timeout < settings.fetch_timeout_s:
        deadline = _deadline(ctx, args.timeout, "timeout")
    else:
        deadline = _deadline(ctx, settings.fetch_timeout_s, "FETCH_TIMEOUT_S")
    if args.method in WRITE_METHODS and not settings.fetch_allow_write_methods:
        raise ToolError(
            f"Method {args.method} is refused: this server allows only GET and HEAD "
            "(FETCH_ALLOW_WRITE_METHODS=true allows POST, PUT, PATCH and DELETE)"
        )
    headers = dict(args.headers or {})
    reserved = sorted(name for name in headers if name.lower() in RESERVED_HEADERS)
    if reserved:
        raise ToolError(f"headers: {', '.join(reserved)} cannot be set; the client sets them itself")
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ToolError(
                f"headers: {name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
            )
        if not _HEADER_VALUE.fullmatch(value):
            raise ToolError(f"headers: the value of {name} must be printable ASCII without line breaks")
    if args.body is not None and args.json_body is not None:
        raise ToolError("body and json: give one of them, not both")
    content: bytes | None = None
    if args.body is not None:
        content = args.body.encode("utf-8")
    elif args.json_body is not None or "json_body" in args.model_fields_set:
        content = json.dumps(args.json_body).encode("utf-8")
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    try:
        response = await client.request(
            args.method, args.url, headers=headers, content=content, timeout_s=args.timeout
        )
    except FetchError as exc:
        raise ToolError(exc.message) from None
    if args.method == "HEAD":
        converted = Converted(classify(response.content_type, b""), "")
    else:
        converted = await _convert(ctx, response, raw=args.raw, deadline=deadline)
    chunk, next_start = _page(converted.text, args.start_index, args.max_length)
    return HttpRequestResult(
        **_common(args.url, response, converted, args.start_index, next_start, settings),
        method=args.method,
        reason=response.reason,
        headers={name: ", ".join(response.headers.get_list(name)) for name in response.headers},
        body=chunk,
    )


@service.lifespan
async def open_client(ctx: StartupContext[FetchSettings]) -> AsyncIterator[FetchState]:
    """One pooled client and one robots.txt cache for the whole service."""
    settings = ctx.settings
    policy = GuardPolicy.build(
        allow_private=settings.fetch_allow_private, allowed_hosts=settings.fetch_allowed_hosts
    )
    client = FetchClient(
        Guard(policy),
        user_agent=settings.fetch_user_agent,
        timeout_s=settings.fetch_timeout_s,
        max_response_bytes=settings.fetch_max_response_bytes,
        max_redirects=settings.fetch_max_redirects,
    )
    processes = settings.fetch_convert_processes
    converter = Converter(
        processes=processes,
        per_client=share_of(processes, ctx.server_settings.client_share),
        max_bytes=settings.fetch_max_convert_bytes,
        memory_mb=settings.fetch_convert_memory_mb,
        queue_timeout_s=ctx.server_settings.queue_timeout_s,
    )
    try:
        await converter.start()
        yield FetchState(client, RobotsPolicy(client, settings.fetch_user_agent), converter)
    finally:
        try:
            await client.aclose()
        finally:
            await asyncio.to_thread(converter.shutdown)  # waits up to 2 s for the fork server to exit


@service.health_check("ssrf_guard")
async def ssrf_guard(ctx: CheckContext[FetchSettings, FetchState]) -> CheckResult:
    """Says how open the guard is, so an operator sees a deliberately opened guard in /health."""
    settings = ctx.settings
    if settings.fetch_allow_private:
        return CheckResult("ok", "private addresses allowed (FETCH_ALLOW_PRIVATE=true)")
    allowed = ", ".join(settings.fetch_allowed_hosts) or "none"
    return CheckResult("ok", f"on; allowed hosts: {allowed}")


# Helpers ------------------------------------------------------------------------------------------


def _deadline(ctx: Context, request_timeout_s: float, named: str) -> Deadline:
    """The call's deadline, from its start: the request's time limit, or the tool timeout if shorter."""
    tool_timeout_s = ctx.server_settings.tool_timeout_s
    if tool_timeout_s < request_timeout_s:
        return Deadline.after(tool_timeout_s, f"MCP_TOOL_TIMEOUT_S={tool_timeout_s:g} s")
    return Deadline.after(request_timeout_s, f"{named}={request_timeout_s:g} s")


async def _convert(ctx: Context, response: FetchedResponse, *, raw: bool, deadline: Deadline) -> Converted:
    return await ctx.state.converter.convert(response, raw=raw, client_id=ctx.client_id, deadline=deadline)


def _page(text: str, start_index: int, max_length: int) -> tuple[str, int | None]:
    chunk = text[start_index : start_index + max_length]
    end = start_index + len(chunk)
    return chunk, (end if end < len(text) else None)


def _common(
    url: str,
    response: FetchedResponse,
    converted: Converted,
    start_index: int,
    next_start: int | None,
    settings: FetchSettings,
) -> dict[str, Any]:
    return {
        "url": url,
        "final_url": str(response.final_url),
        "status": response.status,
        "content_type": response.content_type,
        "kind": converted.kind,
        "title": converted.title,
        "truncated": next_start is not None,
        "start_index": start_index,
        "next_start_index": next_start,
        "total_length": len(converted.text),
        "response_bytes": len(response.body),
        "body_truncated": response.body_truncated,
        "max_response_bytes": settings.fetch_max_response_bytes,
        "conversion_limited": converted.limited,
        "max_convert_bytes": settings.fetch_max_convert_bytes,
    }
