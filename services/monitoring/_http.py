"""What the HTTP backends (Loki, Prometheus) share: one client each, URLs shown without credentials."""

from __future__ import annotations

import json

import httpx

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


def error_text(response: httpx.Response, limit: int = 2000) -> str:
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
