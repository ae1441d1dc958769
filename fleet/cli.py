"""The ``mcp-sse`` command: run services, and call them from a terminal."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from fleet import client_config
from fleet.registry import ServiceEntry, load_registry
from libmcp import SettingsError, build_server, serve

LocalCleanup = Callable[[], None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcp-sse", description="Run and call the mcp-sse MCP services.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run one service in the foreground (what a container runs)")
    serve_cmd.add_argument("service")
    serve_cmd.add_argument("--host")
    serve_cmd.add_argument("--port", type=int)

    up_cmd = commands.add_parser("up", help="run services locally on 127.0.0.1 with embedded defaults")
    up_cmd.add_argument("services", nargs="*", help="default: all")

    tools_cmd = commands.add_parser("tools", help="list the tools of a running service")
    tools_cmd.add_argument("url")
    tools_cmd.add_argument(
        "--token", default=os.environ.get("MCP_TOKEN"), help="bearer token (or $MCP_TOKEN)"
    )

    call_cmd = commands.add_parser("call", help="call a tool of a running service")
    call_cmd.add_argument("url")
    call_cmd.add_argument("tool")
    call_cmd.add_argument("arguments", nargs="?", default="{}", help="JSON object of arguments")
    call_cmd.add_argument("--token", default=os.environ.get("MCP_TOKEN"), help="bearer token (or $MCP_TOKEN)")

    client_config.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve_command(args.service, args.host, args.port)
    if args.command == "up":
        return up_command(args.services)
    if args.command == "tools":
        return tools_command(args.url, args.token)
    if args.command == "call":
        return call_command(args.url, args.tool, args.arguments, args.token)
    return client_config.run(args)


def _fail(message: str, code: int = 2) -> int:
    print(f"mcp-sse: {message}", file=sys.stderr)
    return code


def serve_command(name: str, host: str | None, port: int | None) -> int:
    registry = load_registry()
    try:
        entry = registry[name]
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    try:
        service = entry.load()
    except ImportError as exc:
        return _fail(f"service {name} needs its extra: pip install 'mcp-sse[{entry.extra}]' ({exc})")
    try:
        server = build_server(service, known_variables=registry.all_variables())
    except SettingsError as exc:
        return _fail(str(exc))
    settings = server.server_settings
    metrics_port = entry.metrics_port if settings.metrics_port is None else settings.metrics_port
    try:
        return serve(server, host=host, port=port or settings.port or entry.port, metrics_port=metrics_port)
    except SettingsError as exc:
        return _fail(str(exc))


# mcp-sse up -----------------------------------------------------------------------------------


def _prepare_local(entry: ServiceEntry, env: dict[str, str]) -> LocalCleanup | None:
    """Let a service set up its embedded defaults (``services/<name>/local.py``: ``prepare(env)``)."""
    try:
        local = importlib.import_module(f"services.{entry.name}.local")
    except ModuleNotFoundError as exc:
        if exc.name != f"services.{entry.name}.local":
            raise
        return None
    cleanup: LocalCleanup | None = local.prepare(env)
    return cleanup


def up_command(names: Sequence[str]) -> int:
    registry = load_registry()
    unknown = [name for name in names if name not in registry.services]
    if unknown:
        return _fail(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(registry.services)}")
    selected = [registry[name] for name in (names or registry.services)]
    children: dict[str, subprocess.Popen[bytes]] = {}
    cleanups: list[LocalCleanup] = []
    for entry in selected:
        env = dict(os.environ)
        env.setdefault("MCP_HOST", "127.0.0.1")
        try:
            importlib.import_module(entry.module)
            cleanup = _prepare_local(entry, env)
        except ImportError as exc:
            print(
                f"mcp-sse: {entry.name} not started: install its extra mcp-sse[{entry.extra}] ({exc})",
                file=sys.stderr,
            )
            continue
        except Exception as exc:
            print(f"mcp-sse: {entry.name} not started: {exc}", file=sys.stderr)
            continue
        if cleanup is not None:
            cleanups.append(cleanup)
        children[entry.name] = subprocess.Popen(
            [sys.executable, "-m", "fleet.cli", "serve", entry.name], env=env, start_new_session=True
        )
        port = env.get("MCP_PORT") or entry.port
        print(
            f"mcp-sse: {entry.name} starting on http://{env['MCP_HOST']}:{port} (/sse, /mcp, /rpc)",
            file=sys.stderr,
        )
    if not children:
        return _fail("no service could start", 1)
    try:
        _watch(children)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C or SIGTERM must not cut the shutdown short and leak an embedded database.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            _stop_all(children)
        finally:
            for cleanup in reversed(cleanups):
                cleanup()
    return 0


def _watch(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """Wait until Ctrl-C or SIGTERM; a service that dies is reported and the others keep running."""
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Explicitly: a shell starts background jobs with SIGINT ignored, and Ctrl-C must still work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reported: set[str] = set()
    while True:
        for name, child in children.items():
            code = child.poll()
            if code is not None and name not in reported:
                reported.add(name)
                print(f"mcp-sse: {name} exited with code {code}; the others keep running", file=sys.stderr)
        if len(reported) == len(children):
            return
        time.sleep(0.5)


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"mcp-sse: {name} did not stop in time; killing it", file=sys.stderr)
            child.kill()
            child.wait()


# mcp-sse tools / call -------------------------------------------------------------------------


def mcp_endpoint(url: str) -> str:
    """Accept a base URL or any of the service's endpoint URLs and return its ``/mcp`` URL."""
    base = url.rstrip("/")
    for suffix in ("/mcp", "/sse", "/rpc", "/messages", "/health"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + "/mcp"


def rpc(url: str, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
    headers = {"MCP-Protocol-Version": "2025-11-25", "Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = httpx.post(mcp_endpoint(url), json=body, headers=headers, timeout=120)
    if response.status_code == 401:
        raise RuntimeError("401 Unauthorized: pass --token or set MCP_TOKEN")
    try:
        payload = response.json()
    except ValueError:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}") from None
    if "error" in payload:
        error = payload["error"]
        raise RuntimeError(f"{error.get('message')} (JSON-RPC {error.get('code')})")
    result: dict[str, Any] = payload["result"]
    return result


def tools_command(url: str, token: str | None) -> int:
    try:
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            result = rpc(url, "tools/list", {"cursor": cursor} if cursor else {}, token)
            tools += result["tools"]
            cursor = result.get("nextCursor")
            if not cursor:
                break
    except (httpx.HTTPError, RuntimeError) as exc:
        return _fail(f"{url}: {exc}", 1)
    for tool in tools:
        hints = tool.get("annotations", {})
        mode = "read-only" if hints.get("readOnlyHint") else "writes"
        print(f"{tool['name']:<24} {mode:<9} {tool.get('description', '').splitlines()[0]}")
    return 0


def call_command(url: str, tool: str, arguments: str, token: str | None) -> int:
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        return _fail(f"arguments are not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        return _fail("arguments must be a JSON object")
    try:
        result = rpc(url, "tools/call", {"name": tool, "arguments": parsed}, token)
    except (httpx.HTTPError, RuntimeError) as exc:
        return _fail(f"{url}: {exc}", 1)
    if "structuredContent" in result:
        print(json.dumps(result["structuredContent"], indent=2, ensure_ascii=False))
    else:
        for block in result.get("content", []):
            print(block.get("text", block))
    return 1 if result.get("isError") else 0


if __name__ == "__main__":
    sys.exit(main())
