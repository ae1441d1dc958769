"""Fixtures shared by every test tier."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from libmcp import Server, ServerSettings, Service
from tests.support.servers import run_server


@pytest.fixture
def serve_service() -> Iterator[Callable[..., tuple[str, Server]]]:
    """Serve a :class:`Service` on a loopback port: ``url, server = serve_service(service, settings, **mcp)``.

    ``mcp`` keyword arguments become :class:`ServerSettings` (``auth_tokens=["t"]``, ``max_body_bytes=...``).
    """
    with ExitStack() as stack:

        def start(service: Service, settings: Any = None, **server_settings: Any) -> tuple[str, Server]:
            server = Server(service, settings, ServerSettings.model_validate(server_settings))
            url = stack.enter_context(run_server(server))
            return url, server

        yield start
