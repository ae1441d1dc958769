"""Replies, batches, the rate limit, call failures, fair shares and log lines under hostile input.

Each test replays an attack against a served app (raw httpx) or drives a real client (the official
SDK) and checks the answer is bounded, names the limit and the setting that raises it, and loses
nothing that ran.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import httpx
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import Field

from libmcp import Service, ToolInput, ToolOutput, observability
from tests.libmcp.conftest import demo_process, modern_post, rpc
from tests.libmcp.demo_service import service as demo_service
from tests.libmcp.test_sse_transport import open_session

OLD_BATCHES = {"MCP-Protocol-Version": "2025-03-26"}


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def echo_call(request_id: Any, text: str, times: int = 1) -> dict[str, Any]:
    return request(request_id, "tools/call", {"name": "echo", "arguments": {"text": text, "times": times}})


# A service whose tools fail the ways a real one can: results nested deeper than JSON encoders go
# (postgres: SELECT (repeat('[',260)||repeat(']',260))::jsonb), and Python's own recursion limit.
hostile = Service("hostile", version="1", tools_page_size=100)


class DepthArgs(ToolInput):
    depth: int = Field(ge=1, le=5000, description="How many lists to nest.")


class Nested(ToolOutput):
    value: list[Any]


class Nothing(ToolOutput):
    pass


@hostile.tool(read_only=True)
async def nested(args: DepthArgs) -> Nested:
    """Return lists nested ``depth`` levels deep."""
    value: list[Any] = []
    for _ in range(args.depth - 1):
        value = [value]
    return Nested(value=value)


@hostile.tool(read_only=True)
async def recurse() -> Nothing:
    """Recurse until Python refuses."""

    def down(level: int) -> int:
        return down(level + 1) + 1

    down(0)
    return Nothing()


class BadText(ToolOutput):
    def mcp_text(self) -> str:
        raise KeyError("a converter's bug")


@hostile.tool(read_only=True)
async def bad_text() -> BadText:
    """Return a result whose text block cannot be made."""
    return BadText()


for number in range(12):

    @hostile.tool(name=f"padding_{number}", read_only=True)
    async def padding() -> Nothing:
        """A tool with a long description, so that one page of tools/list is several kilobytes.
        Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut
        labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco."""
        return Nothing()


# Depths on either side of the encoders' limits: pydantic's serializer refuses the deeper one,
# orjson the shallower one (in the reply, where it sits three objects down).
TOO_DEEP = (252, 300)


def result_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert "result" in body, body
    return body["result"]


# Batches and reply budget ----------------------------------------------------------------------


def test_a_1_mib_batch_of_tools_list_is_refused_whole_before_anything_runs(demo):
    url, server = demo
    entry = json.dumps(request(1, "tools/list")).encode()
    count = (1_048_576 - 2) // (len(entry) + 1)
    batch = b"[" + b",".join([entry] * count) + b"]"
    assert 1_000_000 < len(batch) <= 1_048_576
    for path, headers in (("/rpc", {}), ("/mcp", OLD_BATCHES)):
        response = httpx.post(
            f"{url}{path}", content=batch, headers={"Content-Type": "application/json", **headers}
        )
        assert response.status_code == 413, path
        assert len(response.content) < 1000
        error = response.json()["error"]
        assert error["code"] == -32600
        assert f"a batch of {count} messages" in error["message"]
        assert "MCP_MAX_BATCH_MESSAGES" in error["message"]
        assert error["data"] == {"limit": 64, "size": count, "setting": "MCP_MAX_BATCH_MESSAGES"}
    assert server.metrics.calls.requests.get(("tools/list", "rpc", "ok"), 0) == 0
    assert server.metrics.http_rejections.labels("batch_size")._value.get() == 2


def test_a_batch_at_the_cap_is_answered_and_one_over_it_refused(serve_service):
    url, _ = serve_service(demo_service, max_batch_messages=5)
    answered = httpx.post(f"{url}/rpc", json=[request(n, "ping") for n in range(5)])
    assert [entry["id"] for entry in answered.json()] == [0, 1, 2, 3, 4]
    refused = httpx.post(f"{url}/mcp", json=[request(n, "ping") for n in range(6)], headers=OLD_BATCHES)
    assert refused.status_code == 413
    assert "over the limit of 5 (MCP_MAX_BATCH_MESSAGES)" in refused.json()["error"]["message"]


def test_a_batch_answers_within_the_reply_budget_and_keeps_every_answer_that_ran(serve_service):
    url, server = serve_service(demo_service, max_reply_bytes=8192)
    batch = [echo_call(n, "x" * 200, 5) for n in range(12)]
    for path, headers in (("/rpc", {}), ("/mcp", OLD_BATCHES)):
        before = server.metrics.tool_call_count("echo", "ok")
        response = httpx.post(f"{url}{path}", json=batch, headers=headers)
        assert response.status_code == 200
        assert len(response.content) <= 8192
        answers = response.json()
        assert [answer["id"] for answer in answers] == list(range(12))
        whole = [answer for answer in answers if "result" in answer and not answer["result"]["isError"]]
        assert 2 <= len(whole) < 12
        assert answers[: len(whole)] == whole
        assert all(answer["result"]["structuredContent"]["text"] == "x" * 1000 for answer in whole)
        # The first answer that did not fit says so; it ran, and so did every call before it, whose
        # answers are all in the reply. The calls after it were not run, and each says so.
        over = answers[len(whole)]
        assert "Reply too large" in json.dumps(over) and "MCP_MAX_REPLY_BYTES" in json.dumps(over)
        assert server.metrics.tool_call_count("echo", "ok") - before == len(whole)
        for answer in answers[len(whole) + 1 :]:
            assert "this request was not run" in answer["error"]["message"]
            assert answer["error"]["data"] == {"limit": 8192, "setting": "MCP_MAX_REPLY_BYTES"}


def test_a_tool_result_over_the_reply_budget_is_an_error_result_naming_the_limit(serve_service):
    url, server = serve_service(demo_service, max_reply_bytes=4096)
    call = {"name": "echo", "arguments": {"text": "y" * 1000, "times": 10}}
    for response in (rpc(url, "tools/call", call), modern_post(url, "tools/call", call)):
        result = result_of(response)
        assert result["isError"] is True
        text = result["content"][0]["text"]
        assert "Reply too large" in text and "MCP_MAX_REPLY_BYTES" in text and "4096" in text
        assert len(response.content) <= 4096
    assert server.metrics.tool_call_count("echo", "too_large") == 2


def test_any_other_answer_over_the_reply_budget_is_an_error_naming_the_limit(serve_service):
    url, _ = serve_service(hostile, max_reply_bytes=4096)
    response = rpc(url, "tools/list")
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == -32603
    assert "Reply too large" in error["message"] and "MCP_MAX_REPLY_BYTES" in error["message"]
    assert error["data"]["setting"] == "MCP_MAX_REPLY_BYTES"
    assert error["data"]["size"] > 4096
    assert len(response.content) <= 4096


# Rate limit ------------------------------------------------------------------------------------


def test_every_method_and_every_batch_entry_counts_toward_the_rate_limit(serve_service):
    url, server = serve_service(demo_service, rate_limit_per_minute=1, rate_limit_burst=4)
    assert rpc(url, "ping").status_code == 200
    assert rpc(url, "tools/list", path="/mcp").status_code == 200
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx.post(f"{url}/mcp", json=notification).status_code == 202
    # One token is left: a batch of two is refused whole, and neither entry runs.
    pair = [request(1, "tools/list"), request(2, "tools/list")]
    refused = httpx.post(f"{url}/rpc", json=pair)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["message"].startswith("Rate limit exceeded: retry after")
    assert "MCP_RATE_LIMIT_PER_MINUTE" in error["message"]
    assert server.metrics.calls.requests.get(("tools/list", "rpc", "ok"), 0) == 0
    assert rpc(url, "initialize").status_code == 200  # the last token
    limited = modern_post(url, "server/discover")
    assert limited.status_code == 429
    assert limited.json()["id"] == 1
    assert server.metrics.http_rejections.labels("rate_limit")._value.get() == 2


def test_a_batch_larger_than_the_burst_is_refused_naming_the_burst(serve_service):
    url, _ = serve_service(demo_service, rate_limit_per_minute=60, rate_limit_burst=3)
    refused = httpx.post(f"{url}/rpc", json=[request(n, "ping") for n in range(4)])
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    assert "more than the burst of 3" in refused.json()["error"]["message"]
    assert "MCP_RATE_LIMIT_BURST=3" in refused.json()["error"]["message"]
    assert rpc(url, "ping").status_code == 200  # the refused batch spent nothing


def test_the_rate_limit_is_per_identity(serve_service):
    url, _ = serve_service(demo_service, auth_tokens=["a", "b"], rate_limit_per_minute=1, rate_limit_burst=1)
    assert rpc(url, "ping", headers={"Authorization": "Bearer a"}).status_code == 200
    assert rpc(url, "tools/list", headers={"Authorization": "Bearer a"}).status_code == 429
    assert rpc(url, "tools/list", headers={"Authorization": "Bearer b"}).status_code == 200


async def test_sse_posts_count_toward_the_rate_limit_too(serve_service):
    url, _ = serve_service(demo_service, rate_limit_per_minute=1, rate_limit_burst=2)
    async with open_session(url) as (client, stream, endpoint):
        assert (await client.post(endpoint, json=request(1, "initialize"))).status_code == 202
        notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await client.post(endpoint, json=notification)).status_code == 202
        limited = await client.post(endpoint, json=request(2, "ping"))
        assert limited.status_code == 429
        assert "retry-after" in limited.headers
        assert "MCP_RATE_LIMIT_PER_MINUTE" in limited.json()["error"]["message"]
        _, data = await stream.next_event()
        assert json.loads(data)["id"] == 1


# Failures inside a call ------------------------------------------------------------------------


def test_deep_results_and_recursion_errors_are_error_results_on_rpc_and_mcp(serve_service):
    url, server = serve_service(hostile)
    calls = [("nested", {"depth": depth}) for depth in TOO_DEEP] + [("recurse", {})]
    for name, arguments in calls:
        call = {"name": name, "arguments": arguments}
        for response in (
            rpc(url, "tools/call", call),
            rpc(url, "tools/call", call, path="/mcp"),
            modern_post(url, "tools/call", call),
        ):
            result = result_of(response)
            assert result["isError"] is True, (name, arguments)
            assert name in result["content"][0]["text"]
    text = result_of(rpc(url, "tools/call", {"name": "nested", "arguments": {"depth": 252}}))
    assert "cannot be sent as JSON" in text["content"][0]["text"]
    assert server.metrics.tool_call_count("nested", "unencodable") == 7
    ok = result_of(rpc(url, "tools/call", {"name": "nested", "arguments": {"depth": 20}}))
    assert ok["isError"] is False


async def test_deep_results_and_recursion_errors_are_answered_over_sse(serve_service):
    url, _ = serve_service(hostile)
    async with sse_client(f"{url}/sse") as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        results = [await session.call_tool("nested", {"depth": depth}) for depth in TOO_DEEP]
        results.append(await session.call_tool("recurse", {}))
        fine = await session.call_tool("nested", {"depth": 3})
    assert all(result.is_error for result in results)
    assert "RecursionError" in results[-1].content[0].text
    assert fine.is_error is False and fine.structured_content == {"value": [[[]]]}


async def test_a_converter_raising_is_an_internal_error_with_the_request_id_on_every_transport(serve_service):
    url, server = serve_service(hostile)
    call = {"name": "bad_text", "arguments": {}}
    for response in (rpc(url, "tools/call", call), modern_post(url, "tools/call", call)):
        error = response.json()["error"]
        assert error["code"] == -32603 and error["message"] == "Internal error"
        assert "requestId" in error["data"]
        assert "converter" not in response.text
    async with open_session(url) as (client, stream, endpoint):
        await client.post(endpoint, json=request("x", "tools/call", call))
        _, data = await stream.next_event()
    answer = json.loads(data)
    assert answer["id"] == "x" and answer["error"]["code"] == -32603
    assert server.metrics.tool_call_count("bad_text", "internal_error") == 3


async def test_the_official_client_reads_a_deep_result_as_an_error_result(serve_service):
    url, _ = serve_service(hostile)
    async with Client(f"{url}/mcp", mode="auto") as client:
        result = await client.call_tool("nested", {"depth": 300})
    assert result.is_error is True


# Fair shares of tool-call slots ----------------------------------------------------------------


async def test_one_client_filling_its_share_does_not_hold_up_another(serve_service):
    url, server = serve_service(
        demo_service, auth_tokens=["a", "b"], max_concurrent_calls=4, client_share=0.5, queue_timeout_s=0.5
    )

    async def call(token: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            body = request(1, "tools/call", {"name": name, "arguments": arguments})
            response = await client.post(
                f"{url}/rpc", json=body, headers={"Authorization": f"Bearer {token}"}
            )
        return result_of(response)

    slow = [asyncio.create_task(call("a", "sleep", {"seconds": 3})) for _ in range(2)]
    for _ in range(200):
        if server.metrics.calls.in_flight == 2:
            break
        await asyncio.sleep(0.02)
    other = await call("b", "noop", {})  # without shares it would wait, then be Busy
    assert other["isError"] is False
    assert not any(task.done() for task in slow)  # b's call ran while a's two were still running
    extra = await call("a", "noop", {})
    assert extra["isError"] is True
    text = extra["content"][0]["text"]
    assert text.startswith("Busy:")
    for setting in ("MCP_MAX_CONCURRENT_CALLS", "MCP_CLIENT_SHARE", "MCP_QUEUE_TIMEOUT_S"):
        assert setting in text
    assert server.metrics.tool_call_count("noop", "busy") == 1
    assert [(await task)["structuredContent"] for task in slow] == [{"slept": 3}, {"slept": 3}]


# Log lines -------------------------------------------------------------------------------------


def test_a_call_with_50000_argument_names_logs_a_bounded_line():
    arguments = {f"a{n}": n for n in range(50_000)}
    arguments["text"] = "x"
    arguments["n" * 5000] = 1
    with demo_process() as (process, url):
        response = rpc(url, "tools/call", {"name": "echo", "arguments": arguments}, timeout=30)
        result = result_of(response)
        assert result["isError"] is True
        assert "unknown argument" in result["content"][0]["text"]
        assert len(response.content) < 10_000  # the account of bad arguments is bounded too
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    lines = [json.loads(line) for line in output.splitlines() if '"event":"tool_call"' in line]
    assert len(lines) == 1, output[-2000:]
    (line,) = [raw for raw in output.splitlines() if '"event":"tool_call"' in raw]
    assert len(line) < 4096
    logged = lines[0]["arguments"]
    assert len(logged) == 33
    assert logged[-1] == "...(truncated: 49970 more)"
    assert all(len(name) <= 64 + len("...(truncated)") for name in logged)
    print(f"log line {len(line)} bytes for {len(arguments)} argument names", file=sys.stderr)


def test_the_span_of_a_hostile_call_stays_small(demo):
    url, _ = demo
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observability.use_tracer_provider(provider)
    try:
        arguments = {f"a{n}": n for n in range(50_000)}
        for meta in ({"traceparent": "00-" + "f" * 300_000}, {"traceparent": {"not": "a string"}}):
            params = {"name": "echo", "arguments": {**arguments, "text": "x"}, "_meta": meta}
            assert result_of(rpc(url, "tools/call", params, timeout=30))["isError"] is True
    finally:
        observability._tracing_enabled = False
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        assert span.parent is None  # neither was a trace context
        assert sum(len(str(key)) + len(str(value)) for key, value in span.attributes.items()) < 1000
