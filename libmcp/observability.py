"""Metrics (Prometheus), tracing (OpenTelemetry) and JSON logs for every service."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from libmcp.config import SettingsError

if TYPE_CHECKING:
    from libmcp.server import CallInfo

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
TOOL_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

call_logger = logging.getLogger("libmcp.calls")


class Metrics:
    """The Prometheus metrics of one service, in a registry of its own."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"service": service}
        self.requests = Counter(
            "mcp_requests",
            "JSON-RPC requests answered, by method, transport and status.",
            ["method", "transport", "status"],
            registry=self.registry,
        )
        self.http_rejections = Counter(
            "mcp_http_rejections",
            "HTTP requests refused before dispatch (auth, origin, size, rate, protocol), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.tool_calls = Counter(
            "mcp_tool_calls", "Tool calls, by tool and outcome.", ["tool", "outcome"], registry=self.registry
        )
        self.tool_duration = Histogram(
            "mcp_tool_duration_seconds",
            "Tool call duration in seconds.",
            ["tool"],
            buckets=TOOL_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.sse_sessions = Gauge(
            "mcp_sse_sessions_open", "Open legacy SSE sessions.", registry=self.registry
        )
        self.in_flight = Gauge("mcp_tool_calls_in_flight", "Tool calls running now.", registry=self.registry)
        self.info = Gauge("mcp_service_info", "Service identity.", ["service"], registry=self.registry)
        self.info.labels(**labels).set(1)
        self._request_children: dict[tuple[str, str, str], Any] = {}

    def count_request(self, method: str, transport: str, status: str) -> None:
        key = (method if method in _KNOWN_METHODS else "other", transport, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(*key)
        child.inc()

    @contextlib.contextmanager
    def track_call(self, record: ToolCallRecord) -> Iterator[None]:
        self.in_flight.inc()
        try:
            yield
        except BaseException:
            if record.outcome == "ok":
                record.outcome = "internal_error"
            raise
        finally:
            self.in_flight.dec()
            elapsed = time.perf_counter() - record.started
            record.duration_ms = elapsed * 1000
            self.tool_calls.labels(record.tool, record.outcome).inc()
            self.tool_duration.labels(record.tool).observe(elapsed)
            log_tool_call(record)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_KNOWN_METHODS = frozenset(
    {"initialize", "ping", "tools/list", "tools/call", "server/discover", "notifications/initialized"}
)


@dataclass(slots=True)
class ToolCallRecord:
    """What one tool call did, for its metrics, span and log line. Argument values are never kept."""

    service: str
    tool: str
    info: CallInfo
    argument_names: list[str]
    outcome: str = "ok"
    error_type: str | None = None
    started: float = field(default_factory=time.perf_counter)
    duration_ms: float = 0.0


def log_tool_call(record: ToolCallRecord) -> None:
    if not call_logger.isEnabledFor(logging.INFO):
        return
    call_logger.info(
        "tool call",
        extra={
            "fields": {
                "event": "tool_call",
                "request_id": record.info.request_id,
                "tool": record.tool,
                "outcome": record.outcome,
                "duration_ms": round(record.duration_ms, 3),
                "transport": record.info.transport,
                "protocol_version": record.info.protocol_version,
                "client": record.info.client_id,
                "session_id": record.info.session_id,
                "arguments": record.argument_names,
                "error_type": record.error_type,
            }
        },
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, service, message and structured fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if value is not None})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str) -> None:
    """Send every log record to stdout as JSON; uvicorn's access log is replaced by our call lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)


# Tracing ------------------------------------------------------------------------------------------

_tracer: Any = None
_tracing_enabled = False


def configure_tracing(service: str, version: str) -> bool:
    """Turn on OpenTelemetry tracing when the standard ``OTEL_*`` variables ask for an exporter."""
    global _tracer, _tracing_enabled
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if exporter_name in ("", "none") and not endpoint:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", f"mcp-{service}"), "service.version": version}
    )
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise SettingsError(
                "OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_TRACES_EXPORTER ask for OTLP export, but the exporter "
                "is not installed: pip install 'mcp-sse[otlp]' (or unset them, or use "
                "OTEL_TRACES_EXPORTER=console)"
            ) from None
        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    use_tracer_provider(provider)
    return True


def use_tracer_provider(provider: Any) -> None:
    """Trace tool calls into ``provider`` (tests pass one with an in-memory exporter)."""
    global _tracer, _tracing_enabled
    _tracer = provider.get_tracer("libmcp")
    _tracing_enabled = True


@contextlib.contextmanager
def tool_span(record: ToolCallRecord, traceparent: str | None) -> Iterator[None]:
    """A SERVER span named ``tools/call <tool>`` with the OTel MCP semantic-convention attributes."""
    if not _tracing_enabled:
        yield
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None
    attributes = {
        "mcp.method.name": "tools/call",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": record.tool,
        "mcp.protocol.version": record.info.protocol_version,
        "network.transport": "tcp",
        "network.protocol.name": "http",
        "mcp.transport": record.info.transport,
    }
    if record.info.session_id:
        attributes["mcp.session.id"] = record.info.session_id
    with _tracer.start_as_current_span(
        f"tools/call {record.tool}", context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        try:
            yield
        finally:
            if record.outcome != "ok":
                span.set_attribute("error.type", record.error_type or record.outcome)
                span.set_status(Status(StatusCode.ERROR, record.outcome))
