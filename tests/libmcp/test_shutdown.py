"""SIGTERM: stop accepting, let in-flight calls finish (bounded), close SSE streams, exit 0."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest

from tests.libmcp.conftest import demo_process as start_demo_process


@pytest.fixture
def demo_process():
    with start_demo_process({"MCP_SHUTDOWN_GRACE_S": "5"}) as started:
        yield started


def call(url: str, name: str, arguments: dict) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return httpx.post(f"{url}/rpc", json=body, timeout=30)


def test_sigterm_finishes_in_flight_calls_closes_streams_and_exits_zero(demo_process):
    process, url = demo_process
    outcome: dict[str, httpx.Response] = {}
    slow = threading.Thread(target=lambda: outcome.update(slow=call(url, "sleep", {"seconds": 1.5})))
    stream_closed = threading.Event()

    def hold_stream() -> None:
        with httpx.stream("GET", f"{url}/sse", timeout=30) as response:
            for _ in response.iter_lines():
                pass
        stream_closed.set()

    streamer = threading.Thread(target=hold_stream)
    streamer.start()
    slow.start()
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert stream_closed.wait(timeout=5), "the SSE stream was not closed on SIGTERM"
    slow.join(timeout=10)
    code = process.wait(timeout=15)
    assert code == 0
    assert outcome["slow"].status_code == 200
    assert outcome["slow"].json()["result"]["structuredContent"] == {"slept": 1.5}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=1)


def test_calls_that_outlive_the_grace_period_are_cut_off(demo_process):
    process, url = demo_process
    responses: list[httpx.Response] = []

    def too_slow() -> None:
        responses.append(call(url, "sleep", {"seconds": 30}))

    thread = threading.Thread(target=too_slow)
    thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=20)
    thread.join(timeout=5)
    assert code == 0
    assert time.monotonic() - started < 15  # bounded by MCP_SHUTDOWN_GRACE_S=5, not by the 30 s call
    assert responses[0].status_code == 503
    assert responses[0].headers["retry-after"] == "1"
    assert "shutting down" in responses[0].json()["error"]


def test_logs_are_json_lines_with_a_request_id_per_call(demo_process):
    process, url = demo_process
    call(url, "echo", {"text": "password=hunter2"})
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=15)
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(entries) == len(output.splitlines())
    calls = [entry for entry in entries if entry.get("event") == "tool_call"]
    assert len(calls) == 1
    assert calls[0]["tool"] == "echo"
    assert calls[0]["outcome"] == "ok"
    assert calls[0]["arguments"] == ["text"]
    assert len(calls[0]["request_id"]) == 16
    assert "hunter2" not in output
