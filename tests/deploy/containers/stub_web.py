"""The container tier's web stand-ins, run in a container on litellm-net (tests/deploy/test_containers.py).

Port 8080 serves a small HTML page for mcp-fetch to convert, and at ``/large`` one big enough (300 kB)
that the service converts it in a process forked from its fork server. Port 8081 serves the project's
GitHub REST stand-in (harness/fake_github.py: GitHub's documented payload shapes),
because the real GitHub API cannot be reached from this machine.
Run as ``python -m tests.deploy.containers.stub_web``.
"""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from harness.fake_github import FakeGitHub

PAGE = """<!doctype html>
<html><head><title>Container tier</title></head>
<body><h1>Hello from the stub</h1><p>mcp-fetch reached <b>litellm-net</b>.</p></body></html>
"""


LARGE_PAGE = (
    "<!doctype html><html><head><title>Large</title></head><body><article>"
    + "".join(
        f"<p>Paragraph {n} of the large page, with <a href='/p/{n}'>a link</a>.</p>" for n in range(4000)
    )
    + "</article></body></html>"
)


async def page(_: object) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def large_page(_: object) -> HTMLResponse:
    return HTMLResponse(LARGE_PAGE)


def main() -> None:
    fake_github = FakeGitHub()
    fake_github.reset()
    web = Starlette(routes=[Route("/", page), Route("/large", large_page)])
    servers = [
        uvicorn.Server(uvicorn.Config(web, host="0.0.0.0", port=8080, log_level="warning")),
        uvicorn.Server(uvicorn.Config(fake_github.app(), host="0.0.0.0", port=8081, log_level="warning")),
    ]

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(serve_all())


if __name__ == "__main__":
    main()
