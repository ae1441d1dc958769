"""A loopback web page for the fetch service to fetch in the end-to-end tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from tests.support.servers import run_app


@contextlib.contextmanager
def serve_marker_page() -> Iterator[tuple[str, str]]:
    """Serve an HTML page carrying a fresh uuid; yields ``(page_url, marker)``."""
    marker = f"end-to-end marker {uuid.uuid4().hex}"
    page = (
        "<!DOCTYPE html><html><head><title>mcp-sse end-to-end page</title></head><body>"
        f"<nav>Home | About</nav><main><h1>Proven end to end</h1><p>{marker}</p></main></body></html>"
    )

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def robots(request: Request) -> PlainTextResponse:
        return PlainTextResponse("User-agent: *\nAllow: /\n")

    app = Starlette(routes=[Route("/", index), Route("/robots.txt", robots)])
    with run_app(app) as url:
        yield f"{url}/", marker
