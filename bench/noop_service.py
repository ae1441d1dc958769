"""A libmcp service with one no-op tool: the cost of the protocol stack alone.

``python -m bench.noop_service PORT`` serves it like any other service.
"""

from __future__ import annotations

import sys

from libmcp import Service, ToolOutput, build_server, serve

service = Service("noop", version="0.0.0", title="No-op")


class Nothing(ToolOutput):
    ok: bool = True


@service.tool(read_only=True, idempotent=True)
async def noop() -> Nothing:
    """Answer immediately."""
    return Nothing()


if __name__ == "__main__":
    sys.exit(serve(build_server(service), port=int(sys.argv[1])))
