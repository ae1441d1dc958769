"""The 2024-11-05 HTTP+SSE transport, driven by a raw streaming client to see every event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.libmcp.demo_service import service


class SseStream:
    """Reads ``event``/``data`` frames and comment lines from an open /sse response."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments = 0

    async def next_event(self) -> tuple[str, str]:
        event, data = "message", []
        async for line in self.lines:
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                return event, "\n".join(data)
        raise EOFError("stream closed")


@asynccontextmanager
async def open_session(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, SseStream, str]]:
    async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", f"{url}/sse") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        stream = SseStream(response)
        event, endpoint = await stream.next_event()
        assert event == "endpoint"
        yield client, stream, f"{url}{endpoint}"


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


async def test_first_event_is_the_endpoint_and_replies_arrive_as_message_events(demo):
    url, _ = demo
    async with open_session(url) as (client, stream, endpoint):
        assert "/messages?session_id=" in endpoint
        posted = await client.post(endpoint, json=request(1, "initialize", {"protocolVersion": "2024-11-05"}))
        assert posted.status_code == 202
        event, data = await stream.next_event()
        assert event == "message"
        assert json.loads(data)["result"]["protocolVersion"] == "2024-11-05"


async def test_keepalive_comments_flow_while_idle(serve_service):
    url, _ = serve_service(service, sse_keepalive_s=0.05)
    async with open_session(url) as (client, stream, endpoint):
        await client.post(endpoint, json=request(1, "ping"))
        # Read past at least one keep-alive to the next reply.
        await asyncio.sleep(0.3)
        await client.post(endpoint, json=request(2, "ping"))
        await stream.next_event()
        await stream.next_event()
        assert stream.comments >= 1


async def test_cancelled_calls_send_no_reply_and_free_their_slot(demo):
    url, server = demo
    async with open_session(url) as (client, stream, endpoint):
        await client.post(
            endpoint, json=request("slow", "tools/call", {"name": "sleep", "arguments": {"seconds": 30}})
        )
        for _ in range(100):
            if server.metrics.calls.in_flight == 1:
                break
            await asyncio.sleep(0.02)
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow"}}
        assert (await client.post(endpoint, json=cancel)).status_code == 202
        await client.post(endpoint, json=request("after", "ping"))
        _, data = await stream.next_event()
        assert json.loads(data)["id"] == "after"
        assert server.metrics.calls.in_flight == 0
        assert server.metrics.tool_call_count("sleep", "cancelled") == 1


async def test_a_session_ends_when_the_client_goes_and_its_calls_are_cancelled(demo):
    url, server = demo
    async with open_session(url) as (client, _, endpoint):
        await client.post(
            endpoint, json=request(1, "tools/call", {"name": "sleep", "arguments": {"seconds": 30}})
        )
        await asyncio.sleep(0.1)
        assert server.metrics.sse_sessions._value.get() == 1
    for _ in range(100):
        if server.metrics.sse_sessions._value.get() == 0 and server.metrics.calls.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert server.metrics.sse_sessions._value.get() == 0
    assert server.metrics.calls.in_flight == 0
    async with httpx.AsyncClient() as client:
        gone = await client.post(endpoint, json=request(2, "ping"))
    assert gone.status_code == 404
    assert "unknown or closed session" in gone.json()["error"]


async def test_message_endpoint_errors(demo):
    url, _ = demo
    async with open_session(url) as (client, _, endpoint):
        assert (await client.post(f"{url}/messages", json=request(1, "ping"))).status_code == 400
        assert (
            await client.post(f"{url}/messages?session_id=nope", json=request(1, "ping"))
        ).status_code == 404
        broken = await client.post(
            endpoint, content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 400
        assert broken.json()["error"]["code"] == -32700


async def test_batches_are_answered_as_one_batch_event(demo):
    url, _ = demo
    async with open_session(url) as (client, stream, endpoint):
        await client.post(endpoint, json=[request(1, "ping"), request(2, "tools/list")])
        _, data = await stream.next_event()
        replies = json.loads(data)
        assert [reply["id"] for reply in replies] == [1, 2]
