"""Start a server as a child process on a loopback port, wait until it answers, stop it.

The one helper for every child the tests and benchmarks run: ``mcp-sse serve NAME`` (what a container
runs) by default, or any server command (``python -m bench.noop_service PORT``, a page server). Its
output goes to a file, never to a pipe nobody reads, so a chatty child cannot block on a full pipe,
and a child that dies before it answers is reported with what it printed.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SERVICE_READY = frozenset({200, 503})  # 503: up, with a backend down
ERROR_TAIL = 20_000  # characters of a failed child's output quoted in the error


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_command(name: str) -> list[str]:
    """``mcp-sse serve NAME``, through this interpreter (the script may not be installed)."""
    return [sys.executable, "-m", "fleet.cli", "serve", name]


def raise_fd_limit(wanted: int) -> None:
    """Raise this process's soft open-file limit to ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def stop_child(child: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM (a service drains), then SIGKILL if it has not exited after ``timeout`` s; its exit status."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        return child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()


def wait_listening(child: subprocess.Popen[bytes], name: str, port: int, timeout: float) -> None:
    """Wait until ``child`` accepts TCP connections on ``port``; stop it and raise if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{name} exited with {child.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    stop_child(child, 10)
    raise RuntimeError(f"{name} did not listen on {HOST}:{port} in {timeout} s")


class ServiceProcess:
    """A server child process on a loopback port: started, waited for until it answers, stopped.

    Without ``command`` it runs ``mcp-sse serve NAME`` on free ports (``MCP_HOST``, ``MCP_PORT``,
    ``MCP_METRICS_PORT`` set); with one, the command is told its port itself and ``port`` says where
    to probe. Ready means ``health_path`` answers one of ``ready_statuses`` (any status if ``None``).
    The child's output goes to ``log_path`` (appended, kept) or to an anonymous temporary file; it can
    be started again after it stopped. It runs in ``cwd`` with this tree on ``PYTHONPATH``; a bench
    comparing source trees passes another tree as both.
    """

    def __init__(
        self,
        name: str,
        env: Mapping[str, str] | None = None,
        *,
        command: Sequence[str] | None = None,
        port: int | None = None,
        metrics: bool = False,
        health_path: str = "/health",
        ready_statuses: Collection[int] | None = SERVICE_READY,
        inherit_env: bool = True,
        log_path: Path | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.metrics_port = free_port() if metrics else 0
        self.url = f"http://{HOST}:{self.port}"
        self.command = list(command) if command is not None else serve_command(name)
        served_on = (
            {"MCP_HOST": HOST, "MCP_PORT": str(self.port), "MCP_METRICS_PORT": str(self.metrics_port)}
            if command is None
            else {}
        )
        inherited = os.environ if inherit_env else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.env = {
            **inherited,
            **served_on,
            "MCP_ENV_FILE": os.devnull,
            "PYTHONPATH": str(REPO_ROOT),
            **(env or {}),
        }
        self.health_path = health_path
        self.ready_statuses = ready_statuses
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def start(self, timeout: float = 30) -> ServiceProcess:
        """Start the child and wait until it answers; raises with its output if it exits or hangs."""
        if self._log is None:
            self._log = self.log_path.open("a+b") if self.log_path else tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.output(ERROR_TAIL)}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        silent = f"{self.name} did not answer on {self.url} in {timeout} s"
        raise RuntimeError(f"{silent}:\n{self.output(ERROR_TAIL)}")

    def _answers(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            status = httpx.get(f"{self.url}{self.health_path}", timeout=1).status_code
            return self.ready_statuses is None or status in self.ready_statuses
        return False

    def output(self, last_chars: int | None = None) -> str:
        """What the child printed so far (stdout and stderr): all of it, or its last ``last_chars``."""
        if self._log is None:
            return ""
        # pread leaves the file offset, which the child shares, where the child's writes put it.
        size = os.fstat(self._log.fileno()).st_size
        start = 0 if last_chars is None else max(0, size - 4 * last_chars)
        text = os.pread(self._log.fileno(), size - start, start).decode(errors="replace")
        return text if last_chars is None else text[-last_chars:]

    def terminate(self) -> None:
        """SIGTERM: the service drains and exits."""
        assert self.process is not None, f"{self.name} was never started"
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> tuple[int, str]:
        """Wait for the child to exit; its exit status and its output."""
        assert self.process is not None, f"{self.name} was never started"
        code = self.process.wait(timeout=timeout)
        return code, self.output()

    def stop(self, timeout: float = 30) -> tuple[int, str] | None:
        """SIGTERM, then SIGKILL after ``timeout`` s; its exit status and output (``None``: not running)."""
        if self.process is None or self.process.returncode is not None:
            return None
        return stop_child(self.process, timeout), self.output()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
