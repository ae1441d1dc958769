"""What the HTTP backends (Loki, Prometheus) share: one client each, URLs shown without credentials."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from libmcp import ToolError

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
HEALTH_TIMEOUT = 3.0


def display_url(url: str | httpx.URL) -> str:
    """``url`` without its user name and password, fit for messages and logs."""
    parsed = httpx.URL(str(url))
    if parsed.username or parsed.password:
        parsed = parsed.copy_with(username=None, password=None)
    return str(parsed)


def make_client(base_url: str) -> httpx.AsyncClient:
    """A client for one backend; credentials in the URL become HTTP basic auth (httpx does this)."""
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=TIMEOUT, follow_redirects=False)


def error_text(response: httpx.Response | BackendAnswer, limit: int = 2000) -> str:
    """The backend's own explanation of an error: the ``error``/``message`` of a JSON body, else its text."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text[:limit] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])[:limit]
    return text[:limit]


@dataclass(frozen=True, slots=True)
class BackendAnswer:
    """A backend's answer read within the byte cap: what :func:`error_text` and the clients need of it."""

    status_code: int
    reason_phrase: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


async def get_bounded(
    client: httpx.AsyncClient,
    path: str,
    params: Mapping[str, str],
    *,
    backend: str,
    max_bytes: int,
    setting: str = "MONITORING_MAX_RESPONSE_BYTES",
) -> BackendAnswer:
    """GET ``path``, reading at most ``max_bytes`` of the body; a larger answer is a ToolError naming the cap.

    A query can match far more than any tool result returns (PromQL over every series, LogQL over every
    stream): the body is streamed and refused past the cap, so the backend's answer is never held whole.
    Unreachable backends become a ToolError too.
    """
    try:
        async with client.stream("GET", path, params=params) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(backend, max_bytes, setting)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(backend, max_bytes, setting)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ToolError(f"{backend} could not be reached: {type(exc).__name__}: {exc}") from None
    return BackendAnswer(response.status_code, response.reason_phrase, b"".join(chunks))


def _too_large(backend: str, max_bytes: int, setting: str) -> ToolError:
    return ToolError(
        f"{backend}'s answer is larger than {max_bytes} bytes ({setting}): narrow the query "
        "(fewer series or streams, a shorter range, a larger step, topk() or more label matchers)"
    )
