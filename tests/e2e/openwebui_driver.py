"""Drive one MCP tool server through Open WebUI's own MCP client; runs inside ``.tools/openwebui``.

``python openwebui_driver.py`` reads a JSON request on stdin and prints one JSON object on stdout,
one answer per server, in order (one process for all servers: importing Open WebUI takes seconds)::

    {"servers": [{"connection": {<a TOOL_SERVER_CONNECTIONS entry>}, "calls": [{"tool", "arguments"}]}]}
    -> {"servers": [{"specs": [...], "results": [{"ok": true, "content": [...]} | {"ok": false, "error"}]}
                    | {"connect_error": "..."}]}

What Open WebUI 0.12.4 does for a chat that uses an MCP tool server is in
``open_webui/utils/tools.py:connect_mcp_server`` and ``build_tool_server_headers``: for
``auth_type == "bearer"`` it sends ``{"Authorization": "Bearer <key>"}`` (``utils/headers.py``),
builds ``MCPClient`` and awaits ``client.connect(url=..., headers=headers or None)``, then
``list_tool_specs()`` filtered by ``config.function_name_filter_list`` through ``is_string_allowed``, and
later ``call_tool(name, arguments)``. Those two functions need Open WebUI's database and request
objects, so their few lines of header and filter logic are repeated here; everything that touches the
network (``MCPClient``: the httpx2 client, the SDK ``Client`` in ``mode="auto"``, pagination, result
handling) is Open WebUI's own code, imported from the installed package.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from open_webui.utils.mcp.client import MCPClient
from open_webui.utils.misc import is_string_allowed


def connection_headers(connection: dict[str, Any]) -> dict[str, str] | None:
    """``build_tool_server_headers`` for the auth types a static deployment uses (bearer, none)."""
    headers: dict[str, str] = {}
    if connection.get("auth_type", "bearer") == "bearer" and connection.get("key"):
        headers["Authorization"] = f"Bearer {connection['key']}"
    for name, value in (connection.get("headers") or {}).items():
        headers["Authorization" if name.lower() == "authorization" else name] = value
    return headers or None


def name_filter(connection: dict[str, Any]) -> list[str]:
    names = (connection.get("config") or {}).get("function_name_filter_list", "")
    return [name for name in names.split(",")] if isinstance(names, str) else list(names)


async def drive(request: dict[str, Any]) -> dict[str, Any]:
    connection = request["connection"]
    client = MCPClient(server_name=(connection.get("info") or {}).get("id", ""))
    try:
        await client.connect(url=connection["url"], headers=connection_headers(connection))
    except BaseException as exc:  # what Open WebUI logs and shows as "Failed to connect"
        await client.disconnect()
        return {"connect_error": f"{type(exc).__name__}: {exc!r}"}
    try:
        specs = await client.list_tool_specs() or []
        allowed = name_filter(connection)
        if any(allowed):
            specs = [spec for spec in specs if is_string_allowed(spec["name"], allowed)]
        results: list[dict[str, Any]] = []
        for call in request.get("calls", []):
            try:
                content = await client.call_tool(call["tool"], call.get("arguments", {}))
                results.append({"ok": True, "content": content})
            except Exception as exc:  # Open WebUI turns this into the tool's error text for the model
                results.append({"ok": False, "error": str(exc)})
        return {"instructions": client.instructions, "specs": specs, "results": results}
    finally:
        await client.disconnect()


async def drive_all(request: dict[str, Any]) -> dict[str, Any]:
    return {"servers": [await drive(server) for server in request["servers"]]}


def main() -> int:
    request = json.load(sys.stdin)
    print(json.dumps(asyncio.run(drive_all(request)), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
