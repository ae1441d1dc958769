"""A throwaway ``redis-server`` (Debian's) on a free loopback port, no persistence: the session bus's backend.

It can be stopped and started again on the same port, the way a Redis outage looks to the replicas.
"""

from __future__ import annotations

import shutil
import subprocess

from harness.processes import HOST, free_port, stop_child, wait_listening


class RedisServer:
    """``redis-server`` on ``127.0.0.1:<port>`` with ``--save "" --appendonly no``; optional password."""

    def __init__(self, password: str = "") -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server, scripts/apt)")
        self.binary = binary
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        command = [self.binary, "--bind", HOST, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.process, "redis-server", self.port, timeout)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            stop_child(self.process, 10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
