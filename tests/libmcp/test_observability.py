"""Prometheus metrics, OpenTelemetry spans per tool call, and /health."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from libmcp import CheckResult, Service, observability, protocol
from libmcp.calls import CallInfo
from tests.libmcp.conftest import demo_process, modern_post, rpc
from tests.support.servers import free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_requests_tool_outcomes_and_durations(demo):
    url, _ = demo
    rpc(url, "tools/call", {"name": "echo", "arguments": {"text": "a"}})
    rpc(url, "tools/call", {"name": "fail", "arguments": {"reason": "no"}})
    rpc(url, "tools/call", {"name": "echo", "arguments": {}})
    rpc(url, "tools/list")
    response = httpx.get(f"{url}/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("mcp_tool_calls_total", (("outcome", "ok"), ("tool", "echo")))] == 1
    assert found[("mcp_tool_calls_total", (("outcome", "tool_error"), ("tool", "fail")))] == 1
    assert found[("mcp_tool_calls_total", (("outcome", "invalid_arguments"), ("tool", "echo")))] == 1
    assert found[("mcp_tool_duration_seconds_count", (("tool", "echo"),))] == 2
    assert (
        found[("mcp_requests_total", (("method", "tools/list"), ("status", "ok"), ("transport", "rpc")))] == 1
    )
    assert found[("mcp_sse_sessions_open", ())] == 0
    assert found[("mcp_tool_calls_in_flight", ())] == 0


def test_metrics_are_also_served_on_their_own_port():
    metrics_port = free_port()
    with demo_process(metrics_port=metrics_port):
        response = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
    assert response.status_code == 200
    assert "mcp_tool_calls_in_flight" in response.text


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observability.use_tracer_provider(provider)
    yield exporter
    observability._tracing_enabled = False


def test_each_tool_call_is_a_server_span_with_mcp_attributes(demo, spans):
    url, _ = demo
    rpc(url, "tools/call", {"name": "echo", "arguments": {"text": "a"}}, headers={"traceparent": PARENT})
    (span,) = spans.get_finished_spans()
    assert span.name == "tools/call echo"
    assert span.kind == SpanKind.SERVER
    assert span.attributes["mcp.method.name"] == "tools/call"
    assert span.attributes["gen_ai.tool.name"] == "echo"
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_trace_context_in_meta_wins_and_errors_mark_the_span(demo, spans):
    url, _ = demo
    meta_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    modern_post(url, "tools/call", {"name": "fail", "arguments": {"reason": "x"}})
    rpc(
        url,
        "tools/call",
        {"name": "echo", "arguments": {"text": "a"}, "_meta": {"traceparent": meta_parent}},
        headers={"traceparent": PARENT},
    )
    failed, echoed = spans.get_finished_spans()
    assert failed.attributes["error.type"] == "tool_error"
    assert failed.attributes["mcp.protocol.version"] == "2026-07-28"
    assert format(echoed.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"


def test_health_reports_identity_uptime_and_tools(demo):
    url, _ = demo
    body = httpx.get(f"{url}/health").json()
    assert body["status"] == "ok"
    assert body["service"] == "demo"
    assert body["version"] == "0.0.1"
    assert body["tools_count"] == 5
    assert body["uptime"] >= 0


def test_a_down_backend_degrades_health_with_503_and_the_reason(serve_service):
    backend = Service("backed", version="1")

    @backend.health_check("database")
    async def database(ctx) -> CheckResult:
        return CheckResult("down", "connection refused at 127.0.0.1:5432")

    @backend.health_check("loki")
    async def loki(ctx) -> CheckResult:
        return CheckResult("not_configured", "LOKI_URL is not set")

    url, _ = serve_service(backend)
    response = httpx.get(f"{url}/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == {"status": "down", "detail": "connection refused at 127.0.0.1:5432"}
    assert body["checks"]["loki"]["status"] == "not_configured"
    assert rpc(url, "ping").status_code == 200


def test_each_health_check_is_a_backend_up_gauge_for_alerts(serve_service):
    backend = Service("backed", version="1")

    @backend.health_check("database")
    async def database(ctx) -> CheckResult:
        return CheckResult("down", "connection refused")

    @backend.health_check("loki")
    async def loki(ctx) -> CheckResult:
        return CheckResult("not_configured", "LOKI_URL is not set")

    url, _ = serve_service(backend)
    httpx.get(f"{url}/health")
    found = samples(httpx.get(f"{url}/metrics").text)
    assert found[("mcp_backend_up", (("check", "database"),))] == 0
    assert found[("mcp_backend_up", (("check", "loki"),))] == 1


def test_discovery_document_is_built_from_the_live_tools(demo):
    url, server = demo
    document = httpx.get(f"{url}/.well-known/mcp").json()
    assert document["name"] == "demo"
    assert [tool["name"] for tool in document["tools"]] == list(server.tools)
    assert document["transports"] == {"streamable_http": "/mcp", "sse": "/sse", "rpc": "/rpc"}
    assert "2026-07-28" in document["protocolVersions"]


def test_standard_otel_variables_turn_on_span_export():
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "demo-under-test"}
    with demo_process(env) as (process, url):
        rpc(
            url,
            "tools/call",
            {"name": "echo", "arguments": {"text": "traced"}},
            headers={"traceparent": PARENT},
        )
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert '"name": "tools/call echo"' in output
    assert TRACE_ID in output
    assert "demo-under-test" in output


@pytest.mark.parametrize(
    ("session_id", "error_type", "client_id"),
    [(None, None, "127.0.0.1"), ("s-1", "KeyError", 'odd "client"\n')],
)
def test_a_call_line_is_one_json_object_with_the_call_fields(session_id, error_type, client_id):
    """The call log line goes through logging and JsonFormatter like every other line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter("demo"))
    observability.call_logger.addHandler(handler)
    previous = observability.call_logger.level
    observability.call_logger.setLevel(logging.INFO)
    info = CallInfo("sse", protocol.HANDSHAKE, "2024-11-05", client_id, session_id=session_id)
    record = observability.ToolCallRecord("demo", "echo", info, ["path", 'we"ird'])
    record.outcome, record.error_type, record.duration_ms = "internal_error", error_type, 12.3456
    try:
        observability.log_tool_call(record)
    finally:
        observability.call_logger.removeHandler(handler)
        observability.call_logger.setLevel(previous)

    (line,) = stream.getvalue().splitlines()
    fields = json.loads(line)
    fixed = {"level": "INFO", "logger": "libmcp.calls", "service": "demo", "message": "tool call"}
    assert {key: value for key, value in fields.items() if key != "ts"} == fixed | observability.call_fields(
        record
    )
    assert fields["client"] == client_id and fields["duration_ms"] == 12.346
    assert ("session_id" in fields) == (session_id is not None)
