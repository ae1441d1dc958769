"""Real haproxy on loopback balancing every HTTP request round robin over servers, no stickiness."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.processes import HOST, free_port, stop_child, wait_listening


class RoundRobinProxy:
    """haproxy in http mode, ``balance roundrobin`` per request, over ``servers`` (``host:port``)."""

    def __init__(self, servers: Sequence[str]) -> None:
        if shutil.which("haproxy") is None:
            raise RuntimeError("haproxy is not installed (Debian package haproxy, scripts/apt)")
        self.servers = list(servers)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory()

    def start(self, timeout: float = 10) -> RoundRobinProxy:
        lines = [
            "defaults",
            "  mode http",
            "  option http-server-close",  # one request per server connection: each goes round robin
            "  timeout connect 2s",
            "  timeout client 120s",
            "  timeout server 120s",
            "  timeout tunnel 120s",
            "frontend service",
            f"  bind {HOST}:{self.port}",
            "  default_backend replicas",
            "backend replicas",
            "  balance roundrobin",
            *(f"  server replica{index} {server}" for index, server in enumerate(self.servers)),
        ]
        config = Path(self._dir.name) / "haproxy.cfg"
        config.write_text("\n".join(lines) + "\n")
        subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], check=True, timeout=30)
        self.process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_listening(self.process, "haproxy", self.port, timeout)
        except RuntimeError:
            self._dir.cleanup()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            stop_child(self.process, 10)
        self._dir.cleanup()

    def __enter__(self) -> RoundRobinProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
