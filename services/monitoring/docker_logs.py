"""Container logs under docker compose, through the Docker Engine API on its socket.

``GET /containers/{name}/logs`` answers a raw stream for containers with a TTY, and otherwise a
multiplexed one: frames of an 8-byte header (stream type, three zero bytes, payload size as a
big-endian uint32) followed by the payload. See the Engine API docs, "Stream format".
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx

from libmcp import ToolError
from services.monitoring._http import HEALTH_TIMEOUT, error_text
from services.monitoring.log_window import LineCollector, Stream
from services.monitoring.models import ContainerLogs

# Docker's own rule for container names (daemon/names.go); IDs are hex, so they match too.
_CONTAINER_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
_STREAMS: dict[int, Stream] = {0: "stdout", 1: "stdout", 2: "stderr"}  # 0 is stdin, written on stdout

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def docker_address(docker_host: str, default_socket: Path) -> str | None:
    """``unix:///path`` or ``tcp://host:port`` of the engine: ``DOCKER_HOST``, else the socket if mounted."""
    if docker_host:
        if not docker_host.startswith(("unix://", "tcp://")):
            raise ValueError(
                f"DOCKER_HOST={docker_host!r}: use unix:///path/to/docker.sock or tcp://host:port"
            )
        return docker_host
    if default_socket.exists():
        return f"unix://{default_socket}"
    return None


class FrameDecoder:
    """Decode Docker's multiplexed stream incrementally; a frame's payload is passed on as it arrives."""

    def __init__(self) -> None:
        self._header = b""
        self._remaining = 0
        self._stream: Stream = "stdout"

    def feed(self, data: bytes) -> list[tuple[Stream, bytes]]:
        pieces: list[tuple[Stream, bytes]] = []
        position = 0
        while position < len(data):
            if self._remaining == 0:
                needed = 8 - len(self._header)
                self._header += data[position : position + needed]
                position += needed
                if len(self._header) < 8:
                    break
                kind, size = self._header[0], int.from_bytes(self._header[4:8], "big")
                self._header = b""
                if kind not in _STREAMS:
                    raise ValueError(f"not a multiplexed Docker log stream (stream type {kind})")
                self._stream, self._remaining = _STREAMS[kind], size
                continue
            piece = data[position : position + self._remaining]
            position += len(piece)
            self._remaining -= len(piece)
            pieces.append((self._stream, piece))
        return pieces


class DockerLogs:
    """Reads container logs from one Docker Engine."""

    source = "docker"

    def __init__(self, address: str, *, max_lines: int, max_bytes: int) -> None:
        self.address = address
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        if address.startswith("unix://"):
            transport = httpx.AsyncHTTPTransport(uds=address[len("unix://") :])
            self._client = httpx.AsyncClient(transport=transport, base_url="http://docker", timeout=TIMEOUT)
        else:
            self._client = httpx.AsyncClient(base_url="http://" + address[len("tcp://") :], timeout=TIMEOUT)

    async def aclose(self) -> None:
        await self._client.aclose()

    def describe(self) -> str:
        return f"Docker Engine at {self.address}"

    async def version(self) -> str:
        response = await self._client.get("/version", timeout=HEALTH_TIMEOUT)
        if response.status_code != 200:
            raise RuntimeError(f"{self.describe()} answered {response.status_code}: {error_text(response)}")
        body = response.json()
        return f"{self.describe()} (Docker {body.get('Version')}, API {body.get('ApiVersion')})"

    async def read(self, name: str, *, tail: int, since: datetime | None) -> ContainerLogs:
        """The newest ``tail`` lines of a container's stdout and stderr, newest last."""
        if not _CONTAINER_NAME.fullmatch(name):
            raise ToolError(
                f"{name!r} is not a valid container name or ID (letters, digits, '_', '.', '-'; at most 128)"
            )
        path = f"/containers/{quote(name.lstrip('/'), safe='')}"
        tail = min(tail, self.max_lines)
        try:
            tty = await self._has_tty(path, name)
            params = {"stdout": "1", "stderr": "1", "timestamps": "1", "tail": str(tail)}
            if since is not None:
                params["since"] = str(int(since.timestamp()))
            collector = LineCollector(tail, self.max_bytes)
            async with self._client.stream("GET", f"{path}/logs", params=params) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise ToolError(self._error(response, name))
                decoder = None if tty else FrameDecoder()
                async for chunk in response.aiter_bytes():
                    if decoder is None:
                        collector.feed(chunk)
                        continue
                    for stream, payload in decoder.feed(chunk):
                        collector.feed(payload, stream)
        except httpx.HTTPError as exc:
            raise ToolError(f"{self.describe()} could not be reached: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:
            raise ToolError(f"{self.describe()} sent logs in an unknown format: {exc}") from None
        lines, truncated = collector.finish()
        return ContainerLogs(source="docker", name=name, lines=lines, truncated=truncated)

    async def _has_tty(self, path: str, name: str) -> bool:
        # Older engines label both formats application/vnd.docker.raw-stream, so ask the container.
        response = await self._client.get(f"{path}/json")
        if response.status_code != 200:
            raise ToolError(self._error(response, name))
        return bool(response.json().get("Config", {}).get("Tty"))

    def _error(self, response: httpx.Response, name: str) -> str:
        if response.status_code == 404:
            return f"no container named {name}: {error_text(response)}"
        return f"{self.describe()} answered HTTP {response.status_code}: {error_text(response)}"
