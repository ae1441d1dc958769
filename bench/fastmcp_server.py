"""An anchor: fastmcp's server, stateless with JSON responses, run as its documentation shows.

It offers the same two tools as the measured services: ``noop`` and a ``read_file`` of a text file.
Runs in its own venv (scripts/setup.d/74-fastmcp.sh), since fastmcp pins its own ``mcp``:
``.tools/fastmcp/bin/python bench/fastmcp_server.py PORT ROOT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastmcp import FastMCP
from pydantic import BaseModel


class Nothing(BaseModel):
    ok: bool = True


class FileText(BaseModel):
    path: str
    content: str


def build(root: Path) -> FastMCP:
    server = FastMCP("reference-fastmcp")

    @server.tool
    async def noop() -> Nothing:
        """Answer immediately."""
        return Nothing()

    @server.tool
    async def read_file(path: str) -> FileText:
        """Read a text file under the root."""
        return FileText(path=path, content=(root / path).read_text(encoding="utf-8"))

    return server


if __name__ == "__main__":
    port, root = int(sys.argv[1]), Path(sys.argv[2])
    # As a user quiets a production server: WARNING for fastmcp's and uvicorn's logs, no banner.
    build(root).run(
        transport="http",
        host="127.0.0.1",
        port=port,
        stateless_http=True,
        json_response=True,
        log_level="WARNING",
        show_banner=False,
    )
