"""Start real HTTP servers on ephemeral loopback ports.

``run_app`` serves an ASGI app with uvicorn in a background thread (fast, same process, so tests
can look at the server object); ``run_server`` serves a libmcp server's app that way, with the
uvicorn configuration the runner uses (the HTTP edge's limits included); ``ServiceProcess`` runs
``mcp-sse serve NAME`` as a child process (what a container runs), for signals, start-up failures and
anything process-wide.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from libmcp import Server, create_app
from libmcp.runner import uvicorn_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


class ServiceProcess:
    """``python -m fleet.cli serve NAME`` on free loopback ports, stopped with SIGTERM."""

    def __init__(self, name: str, env: Mapping[str, str] | None = None, *, metrics: bool = False) -> None:
        self.name = name
        self.port = free_port()
        self.metrics_port = free_port() if metrics else 0
        self.env = {
            **os.environ,
            "MCP_HOST": "127.0.0.1",
            "MCP_PORT": str(self.port),
            "MCP_METRICS_PORT": str(self.metrics_port),
            "MCP_ENV_FILE": os.devnull,
            "PYTHONPATH": str(REPO_ROOT),
            **(env or {}),
        }
        self.process: subprocess.Popen[str] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServiceProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fleet.cli", "serve", self.name],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read() if self.process.stdout else ""
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{output}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code in (200, 503):
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy in {timeout} s")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> tuple[int, str]:
        assert self.process is not None
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output

    def stop(self) -> tuple[int, str] | None:
        if self.process is None or self.process.returncode is not None:
            return None
        self.terminate()
        try:
            return self.wait()
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.wait()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
