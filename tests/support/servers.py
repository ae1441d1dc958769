"""Start real HTTP servers on ephemeral loopback ports.

``run_app`` serves an ASGI app with uvicorn in a background thread (fast, same process, so tests
can look at the server object); ``run_server`` serves a libmcp server's app that way, with the
uvicorn configuration the runner uses (the HTTP edge's limits included). ``ServiceProcess`` (from
:mod:`harness.processes`, shared with the benchmarks) runs ``mcp-sse serve NAME`` as a child process
(what a container runs), for signals, start-up failures and anything process-wide.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from harness.processes import REPO_ROOT, ServiceProcess, free_port
from libmcp import Server, create_app
from libmcp.runner import uvicorn_config

__all__ = ["REPO_ROOT", "ServiceProcess", "free_port", "run_app", "run_server"]


@contextlib.contextmanager
def run_app(app: Any, **config: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields its base URL and stops it afterwards."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **config)
    with _run(config) as url:
        yield url


@contextlib.contextmanager
def run_server(server: Server) -> Iterator[str]:
    """Serve a libmcp server's app in a thread, configured as the runner does; yields its URL."""
    config = uvicorn_config(server, create_app(server), host="127.0.0.1", port=0, log_level="warning")
    with _run(config) as url:
        yield url


@contextlib.contextmanager
def _run(config: uvicorn.Config) -> Iterator[str]:
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
