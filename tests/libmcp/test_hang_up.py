"""A plain HTTP client that hangs up mid-call ends its call: the tool is cancelled, its slot given back.

Without this a client that gives up (a timeout in a script, a closed browser tab) would leave its
call running to MCP_TOOL_TIMEOUT_S, holding its share of the service's tool-call slots.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

import httpx
import pytest

from libmcp import Server, Service, ToolOutput
from tests.libmcp.conftest import envelope

lingering = Service("lingering", version="1")
started = threading.Event()
cancelled = threading.Event()


class Done(ToolOutput):
    pass


@lingering.tool(read_only=True)
async def linger() -> Done:
    """Wait a minute, noting whether it was cancelled."""
    started.set()
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        cancelled.set()
        raise
    return Done()


def call_body(path: str) -> bytes:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "linger", "arguments": {}}}
    if path == "/mcp":  # the stateless revision: its envelope in _meta and its routing headers
        body["params"]["_meta"] = envelope()
    return json.dumps(body).encode()


HEADERS = {
    "/rpc": "",
    "/mcp": "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n"
    "Mcp-Method: tools/call\r\nMcp-Name: linger\r\n",
}


@pytest.mark.parametrize("path", ["/rpc", "/mcp"])
async def test_a_client_hanging_up_cancels_its_tool_call(
    path: str, serve_service: Callable[..., tuple[str, Server]]
) -> None:
    started.clear()
    cancelled.clear()
    url, server = serve_service(lingering)
    host, port = url.removeprefix("http://").split(":")
    body = call_body(path)
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{HEADERS[path]}"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    assert await asyncio.to_thread(started.wait, 10), "the tool call did not start"

    writer.close()  # the client gives up

    assert await asyncio.to_thread(cancelled.wait, 10), "the tool call ran on after its client left"
    assert await until_no_call_in_flight(server)


async def until_no_call_in_flight(server: Server) -> bool:
    for _ in range(200):
        if "\nmcp_tool_calls_in_flight 0.0\n" in server.metrics.render().decode():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_an_answer_is_still_sent_to_a_client_that_stays(
    serve_service: Callable[..., tuple[str, Server]],
) -> None:
    quick = Service("quick", version="1")

    @quick.tool(read_only=True)
    async def nap() -> Done:
        """Sleep briefly."""
        await asyncio.sleep(0.2)
        return Done()

    url, _ = serve_service(quick)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "nap", "arguments": {}}}
        answers = await asyncio.gather(*(http.post("/rpc", json=body) for _ in range(20)))
    assert [answer.json()["result"]["isError"] for answer in answers] == [False] * 20
