"""The reference: the official SDK's own server (``MCPServer``), stateless with JSON responses.

It offers the same two tools as the measured services: ``noop`` and a ``read_file`` of a text file.
Configured as a user runs it in production: ``log_level="WARNING"``. At the default INFO level the SDK
logs a line per stateless request ("Terminating session: None"), which ``rich``, when installed (it is in
.venv), renders as a table: about half the server's CPU, which would flatter every ratio against it.
``python -m bench.reference_server PORT ROOT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel


class Nothing(BaseModel):
    ok: bool = True


class FileText(BaseModel):
    path: str
    content: str


def build(root: Path) -> MCPServer:
    server = MCPServer("reference", log_level="WARNING")

    @server.tool()
    async def noop() -> Nothing:
        """Answer immediately."""
        return Nothing()

    @server.tool()
    async def read_file(path: str) -> FileText:
        """Read a text file under the root."""
        return FileText(path=path, content=(root / path).read_text(encoding="utf-8"))

    return server


if __name__ == "__main__":
    port, root = int(sys.argv[1]), Path(sys.argv[2])
    app = build(root).streamable_http_app(json_response=True, stateless_http=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
