"""``mcp-sse discover`` and ``mcp-sse config``: what is running, and ready client configurations.

Every URL is derived from the registry (``config/services.yaml``) for one of three deployments:
``local`` (``mcp-sse up``: 127.0.0.1 and the registry ports), ``compose`` (container names on
``litellm-net``) and ``chart`` (in-cluster Service DNS names of the Helm release).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from fleet.registry import ServiceEntry, load_registry

TARGETS = ("local", "compose", "chart")
CHART_NAME = "mcp-sse"


def chart_fullname(release: str) -> str:
    """The chart's ``mcp-sse.fullname``: the release name if it contains the chart name, else both."""
    name = release if CHART_NAME in release else f"{release}-{CHART_NAME}"
    return name[:50].rstrip("-")


def service_url(
    entry: ServiceEntry,
    target: str,
    *,
    base_url: str | None = None,
    namespace: str = "default",
    release: str = CHART_NAME,
) -> str:
    """The base URL (no path) of one service for a deployment target.

    ``base_url`` overrides the host: ``http://10.0.0.5`` becomes ``http://10.0.0.5:<port>``; it may
    also use ``{name}``, ``{port}`` and ``{container}`` placeholders.
    """
    if base_url:
        if "{" in base_url:
            return base_url.format(name=entry.name, port=entry.port, container=entry.container).rstrip("/")
        return f"{base_url.rstrip('/')}:{entry.port}"
    if target == "local":
        return f"http://127.0.0.1:{entry.port}"
    if target == "compose":
        return f"http://{entry.container}:{entry.port}"
    if target == "chart":
        host = f"{chart_fullname(release)}-{entry.name}"[:63].rstrip("-")
        return f"http://{host}.{namespace}.svc.cluster.local:{entry.port}"
    raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")


def endpoint_path(transport: str) -> str:
    if transport not in ("http", "sse"):
        raise ValueError(f"unknown transport {transport!r}; choose http or sse")
    return "/mcp" if transport == "http" else "/sse"


@dataclass(frozen=True)
class ConfigOptions:
    target: str = "local"
    transport: str = "http"
    base_url: str | None = None
    auth_env: str | None = None
    namespace: str = "default"
    release: str = CHART_NAME
    services: tuple[str, ...] = ()


def _selected(options: ConfigOptions) -> list[ServiceEntry]:
    registry = load_registry()
    names = options.services or tuple(registry.services)
    return [registry[name] for name in names]


def _url(entry: ServiceEntry, options: ConfigOptions) -> str:
    base = service_url(
        entry, options.target, base_url=options.base_url, namespace=options.namespace, release=options.release
    )
    return base + endpoint_path(options.transport)


LITELLM_MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
"""LiteLLM's own key, for clients of LiteLLM; 1.110 refuses to start without a strong one."""


def litellm_config(options: ConfigOptions) -> dict[str, Any]:
    """LiteLLM's ``config.yaml`` for the selected services: ``mcp_servers:`` and the ``general_settings``
    that let it start (LiteLLM >= 1.110 refuses an unset, empty or well-known master key)."""
    servers: dict[str, Any] = {}
    for entry in _selected(options):
        server: dict[str, Any] = {
            "url": _url(entry, options),
            "transport": options.transport,
            "description": entry.description,
        }
        if options.auth_env:
            server["auth_type"] = "bearer_token"
            server["authentication_token"] = f"os.environ/{options.auth_env}"
        servers[entry.name] = server
    return {
        "general_settings": {"master_key": f"os.environ/{LITELLM_MASTER_KEY_ENV}"},
        "mcp_servers": servers,
    }


def openwebui_connections(
    options: ConfigOptions, environ: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Open WebUI's ``TOOL_SERVER_CONNECTIONS``: one native MCP (Streamable HTTP) connection per service.

    Open WebUI cannot read a token from its own environment per connection, so with ``auth_env`` the
    token's value is written into the JSON; the variable must be set.
    """
    env = os.environ if environ is None else environ
    key = ""
    if options.auth_env:
        if not env.get(options.auth_env):
            raise ValueError(f"--auth-env {options.auth_env}: the variable is not set")
        key = env[options.auth_env]
    http_options = ConfigOptions(**{**options.__dict__, "transport": "http"})
    return [
        {
            "type": "mcp",
            "url": _url(entry, http_options),
            "path": "",
            "auth_type": "bearer" if key else "none",
            "key": key,
            "config": {"enable": True},
            "info": {
                "id": f"mcp-sse-{entry.name}",
                "name": f"mcp-sse {entry.name}",
                "description": entry.description,
            },
        }
        for entry in _selected(options)
    ]


# discover -------------------------------------------------------------------------------------


@dataclass
class Discovered:
    url: str
    status: str
    service: str = "?"
    version: str = "?"
    tools: tuple[str, ...] = ()
    detail: str = ""


def discover_one(url: str, token: str | None, timeout: float = 3.0) -> Discovered:
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        health = httpx.get(f"{base}/health", timeout=timeout)
        body = health.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Discovered(base, "down", detail=type(exc).__name__)
    found = Discovered(
        base, str(body.get("status", "?")), str(body.get("service", "?")), str(body.get("version", "?"))
    )
    down = {name: check for name, check in body.get("checks", {}).items() if check.get("status") == "down"}
    found.detail = "; ".join(f"{name}: {check.get('detail', '')}" for name, check in down.items())
    try:
        document = httpx.get(f"{base}/.well-known/mcp", headers=headers, timeout=timeout)
        if document.status_code == 401:
            found.detail = (found.detail + "; " if found.detail else "") + "tools need a token (--token)"
        else:
            found.tools = tuple(tool["name"] for tool in document.json()["tools"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        found.detail = f"discovery failed: {type(exc).__name__}"
    return found


def discover(urls: Sequence[str], token: str | None, names: Sequence[str] = ()) -> list[Discovered]:
    """Ask every URL at once; ``names`` label the rows of services that do not answer."""
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        found = list(pool.map(lambda url: discover_one(url, token), urls))
    for item, name in zip(found, names, strict=False):
        if item.service == "?":
            item.service = name
    return found


def format_discovered(found: Sequence[Discovered]) -> str:
    rows = [("SERVICE", "URL", "STATUS", "VERSION", "TOOLS", "DETAIL")]
    for item in found:
        rows.append(
            (
                item.service,
                item.url,
                item.status,
                item.version,
                ",".join(item.tools) if item.tools else "-",
                item.detail,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(widths[index]) for index, cell in enumerate(row[:-1])) + "  " + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


# command line ---------------------------------------------------------------------------------


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    discover_cmd = commands.add_parser("discover", help="show which services are up, their tools and health")
    discover_cmd.add_argument(
        "urls", nargs="*", help="service base URLs (default: the registry's local ports)"
    )
    discover_cmd.add_argument(
        "--token", default=os.environ.get("MCP_TOKEN"), help="bearer token (or $MCP_TOKEN)"
    )
    discover_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")

    config_cmd = commands.add_parser("config", help="print a ready client configuration")
    config_cmd.add_argument("client", choices=("litellm", "openwebui"))
    config_cmd.add_argument(
        "--target",
        choices=TARGETS,
        default="local",
        help="local runner, docker compose (litellm-net) or the Helm chart",
    )
    config_cmd.add_argument("--transport", choices=("http", "sse"), default="http", help="LiteLLM transport")
    config_cmd.add_argument(
        "--base-url", help="override the host, e.g. http://10.0.0.5 or http://{container}:{port}"
    )
    config_cmd.add_argument("--auth-env", help="environment variable holding the bearer token")
    config_cmd.add_argument("--namespace", default="default", help="chart target: the release namespace")
    config_cmd.add_argument("--release", default=CHART_NAME, help="chart target: the Helm release name")
    config_cmd.add_argument(
        "--service", action="append", default=[], dest="services", help="limit to this service (repeatable)"
    )


def run(args: argparse.Namespace) -> int:
    if args.command == "discover":
        registry = load_registry()
        urls = args.urls or [service_url(entry, "local") for entry in registry.services.values()]
        found = discover(urls, args.token, () if args.urls else tuple(registry.services))
        if args.json:
            print(json.dumps([item.__dict__ for item in found], indent=2))
        else:
            print(format_discovered(found))
        return 0 if all(item.status == "ok" for item in found) else 1
    if args.command == "config":
        unknown = [name for name in args.services if name not in load_registry().services]
        if unknown:
            print(f"mcp-sse: unknown service(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        options = ConfigOptions(
            target=args.target,
            transport=args.transport,
            base_url=args.base_url,
            auth_env=args.auth_env,
            namespace=args.namespace,
            release=args.release,
            services=tuple(args.services),
        )
        try:
            if args.client == "litellm":
                print(yaml.safe_dump(litellm_config(options), sort_keys=False), end="")
            else:
                print(json.dumps(openwebui_connections(options), indent=2))
        except ValueError as exc:
            print(f"mcp-sse: {exc}", file=sys.stderr)
            return 2
        return 0
    return 2
