"""notifications/progress: the official SDK client over /sse receives a tool's progress; without a stream
(stateless /mcp, /rpc) reporting progress is a no-op and the call answers as usual."""

from __future__ import annotations

from mcp import ClientSession
from mcp.client.sse import sse_client

from libmcp.testing.conformance_server import service
from tests.libmcp.conftest import rpc


async def test_sse_client_receives_progress_of_a_call_with_a_token(serve_service):
    url, _ = serve_service(service)
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with sse_client(f"{url}/sse") as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)

    assert result.is_error is False
    assert seen == [(0, 100), (50, 100), (100, 100)]


def test_progress_without_a_stream_is_a_no_op(serve_service):
    url, _ = serve_service(service)
    params = {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "p1"}}
    body = rpc(url, "tools/call", params).json()
    assert body["result"]["content"][0]["text"] == "Progress reported: 0, 50 and 100 of 100."
