"""Run one service: load settings, bind the MCP port and the metrics port, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

import uvicorn
from prometheus_client import start_http_server
from starlette.types import ASGIApp

from libmcp.app import create_app
from libmcp.config import (
    DEFAULT_ENV_FILE,
    ServerSettings,
    check_unknown,
    load_settings,
    read_env_file,
    variable_names,
)
from libmcp.http_edge import EdgeLimits, HttpEdge, connection_cap, trusted_proxies
from libmcp.http_protocol import http_protocol
from libmcp.observability import configure_logging, configure_tracing
from libmcp.server import Server
from libmcp.service import Service

logger = logging.getLogger("libmcp.runner")


def build_server(
    service: Service[Any, Any],
    *,
    environ: Mapping[str, str] | None = None,
    known_variables: Iterable[str] = (),
) -> Server:
    """Load and validate every setting of ``service``; raises :class:`SettingsError` naming the culprit."""
    env = dict(os.environ if environ is None else environ)
    env_file = env.get("MCP_ENV_FILE", DEFAULT_ENV_FILE)
    file_values = read_env_file(env_file)
    warn_if_readable_by_others(env_file)
    known = {*variable_names(ServerSettings), *variable_names(service.settings_class), *known_variables}
    check_unknown(known, environ=env, env_file_values=file_values, env_file=env_file)
    server_settings = load_settings(ServerSettings, environ=env, env_file_values=file_values)
    trusted_proxies(server_settings)
    settings = load_settings(service.settings_class, environ=env, env_file_values=file_values)
    return Server(service, settings, server_settings)


def uvicorn_config(server: Server, app: ASGIApp, *, host: str, port: int, **overrides: Any) -> uvicorn.Config:
    """How every libmcp app is served: the HTTP edge's limits in front of the coalescing protocol,
    forwarded headers believed only from ``MCP_TRUSTED_PROXIES``, keep-alive from the settings."""
    settings = server.server_settings
    proxies = trusted_proxies(settings)
    limits = EdgeLimits.from_settings(settings, max_connections=connection_cap(settings.max_connections))
    edge = HttpEdge(limits, server.metrics.http_rejections)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": edge.protocol(http_protocol()),
        "ws": "none",  # no WebSocket route: an Upgrade is answered as plain HTTP, behind the edge
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": int(settings.shutdown_grace_s) or None,
        "timeout_keep_alive": settings.keepalive_timeout_s,
        "server_header": False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: only the listed proxies.
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies,
        **overrides,
    }
    return uvicorn.Config(app, **options)


def warn_if_readable_by_others(env_file: str) -> None:
    """Secrets belong in a file only its owner can read: say so when group or others can (0600 fixes it)."""
    try:
        mode = os.stat(env_file).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and mode & 0o077:
        logger.warning(
            "env file %s is readable by group or others (mode %o); it may hold secrets: chmod 600 %s",
            env_file,
            mode & 0o777,
            env_file,
        )


class _DrainingServer(uvicorn.Server):
    """uvicorn, plus: on SIGTERM/SIGINT end the SSE streams at once so only tool calls are waited for."""

    def __init__(self, config: uvicorn.Config, on_exit: list[Callable[[], None]]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        for callback in self._on_exit:
            callback()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (every image and the dev extra): its socket writes and timers cost
    a fraction of the selector loop's on the per-call path."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def serve(server: Server, *, host: str | None = None, port: int, metrics_port: int | None = None) -> int:
    """Serve until SIGTERM/SIGINT; in-flight calls get ``MCP_SHUTDOWN_GRACE_S`` to finish. Returns 0."""
    settings = server.server_settings
    configure_logging(server.service.name, settings.log_level)
    configure_tracing(server.service.name, server.service.version)
    bind_host = host or settings.host
    app = create_app(server)
    metrics_server = None
    if metrics_port:
        metrics_server, _ = start_http_server(metrics_port, addr=bind_host, registry=server.metrics.registry)
    config = uvicorn_config(server, app, host=bind_host, port=port)
    loop_holder: list[asyncio.AbstractEventLoop] = []

    def end_streams() -> None:
        if loop_holder:
            loop_holder[0].call_soon_threadsafe(app.state.sse.close_all)

    uvicorn_server = _DrainingServer(config, [end_streams])

    async def main() -> None:
        loop_holder.append(asyncio.get_running_loop())
        await uvicorn_server.serve()

    logger.info(
        "starting %s on %s:%s (metrics port %s)", server.service.name, bind_host, port, metrics_port or "off"
    )
    # uvicorn re-raises the signal that stopped it once it has drained; these handlers absorb it, so a
    # drained shutdown exits 0 instead of dying by SIGTERM (143 in a container).
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: None)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(main())
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
    if not uvicorn_server.started:
        return 1
    return 0
