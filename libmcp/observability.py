"""Metrics (Prometheus), tracing (OpenTelemetry) and JSON logs for every service."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.utils import floatToGoString

from libmcp.calls import CallInfo
from libmcp.config import SettingsError

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
TOOL_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

call_logger = logging.getLogger("libmcp.calls")


class Metrics:
    """The Prometheus metrics of one service, in a registry of its own."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = CallStats()
        self.registry.register(self.calls)
        self.http_rejections = Counter(
            "mcp_http_rejections",
            "HTTP requests refused before dispatch (auth, origin, size, rate, protocol), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.sse_sessions = Gauge(
            "mcp_sse_sessions_open", "Open legacy SSE sessions.", registry=self.registry
        )
        self.sse_sessions_max = Gauge(
            "mcp_sse_sessions_max",
            "The most legacy SSE sessions open at once (MCP_SSE_MAX_SESSIONS).",
            registry=self.registry,
        )
        self.in_flight = Gauge("mcp_tool_calls_in_flight", "Tool calls running now.", registry=self.registry)
        self.in_flight.set_function(lambda: self.calls.in_flight)
        self.backend_up = Gauge(
            "mcp_backend_up",
            "1 when the last /health run of this check did not find its backend down, else 0.",
            ["check"],
            registry=self.registry,
        )
        self.info = Gauge("mcp_service_info", "Service identity.", ["service"], registry=self.registry)
        self.info.labels(service=service).set(1)

    def count_request(self, method: str, transport: str, status: str) -> None:
        key = (method if method in _KNOWN_METHODS else "other", transport, status)
        requests = self.calls.requests
        requests[key] = requests.get(key, 0) + 1

    def call_started(self) -> None:
        self.calls.in_flight += 1

    def call_finished(self, record: ToolCallRecord) -> None:
        """Count, time and log one finished call (``record.outcome`` says how it ended)."""
        self.calls.in_flight -= 1
        elapsed = time.perf_counter() - record.started
        record.duration_ms = elapsed * 1000
        self.calls.record(record.tool, record.outcome, elapsed)
        log_tool_call(record)

    def tool_call_count(self, tool: str, outcome: str) -> int:
        return self.calls.outcomes.get((tool, outcome), 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class CallStats:
    """Requests, tool calls and tool durations, exported to Prometheus at scrape time.

    These change on every call, from the event loop only, so they are plain dicts: prometheus_client's
    metrics take a lock per update and cost more than a no-op call's own work. A scrape, from the
    metrics thread, reads copies (a dict copy is atomic under the GIL).
    """

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.outcomes: dict[tuple[str, str], int] = {}
        # per tool: a count per bucket (the last one is +Inf), then the sum of durations
        self.durations: dict[str, list[float]] = {}
        self.in_flight = 0

    def record(self, tool: str, outcome: str, seconds: float) -> None:
        key = (tool, outcome)
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        histogram = self.durations.get(tool)
        if histogram is None:
            histogram = self.durations[tool] = [0.0] * (len(TOOL_DURATION_BUCKETS) + 2)
        histogram[bisect.bisect_left(TOOL_DURATION_BUCKETS, seconds)] += 1
        histogram[-1] += seconds

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> list[Metric]:
        requests, calls, durations = self._families()
        for request_labels, request_count in dict(self.requests).items():
            requests.add_metric(request_labels, request_count)
        for call_labels, call_count in dict(self.outcomes).items():
            calls.add_metric(call_labels, call_count)
        for tool, counts in dict(self.durations).items():
            counts = list(counts)
            cumulative, buckets = 0.0, []
            for bound, count in zip((*TOOL_DURATION_BUCKETS, math.inf), counts, strict=False):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            durations.add_metric((tool,), buckets, counts[-1])
        return [requests, calls, durations]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily("mcp_requests", REQUESTS_HELP, labels=REQUEST_LABELS),
            CounterMetricFamily("mcp_tool_calls", TOOL_CALLS_HELP, labels=("tool", "outcome")),
            HistogramMetricFamily("mcp_tool_duration_seconds", DURATION_HELP, labels=("tool",)),
        )


REQUESTS_HELP = "JSON-RPC requests answered, by method, transport and status."
REQUEST_LABELS = ("method", "transport", "status")
TOOL_CALLS_HELP = "Tool calls, by tool and outcome."
DURATION_HELP = "Tool call duration in seconds."

_KNOWN_METHODS = frozenset(
    {"initialize", "ping", "tools/list", "tools/call", "server/discover", "notifications/initialized"}
)


# A call's log line and span hold at most this many argument names, each cut to this many characters:
# the names come from the request, before validation, and a hostile one can send 50,000 of them.
MAX_LOGGED_ARGUMENTS = 32
MAX_LOGGED_NAME_CHARS = 64
# Any other request-derived value in a log line (the client id, for one) is cut to this length.
MAX_LOGGED_VALUE_CHARS = 256


def logged_argument_names(arguments: dict[str, Any]) -> list[str]:
    """The sorted argument names for a call's log line, bounded: past the caps, names are cut and the
    list ends with a marker saying how many more there were."""
    if len(arguments) <= MAX_LOGGED_ARGUMENTS:
        names = sorted(arguments)
        for name in names:
            if len(name) > MAX_LOGGED_NAME_CHARS:
                return [clip(name, MAX_LOGGED_NAME_CHARS) for name in names]
        return names
    kept = sorted(
        clip(name, MAX_LOGGED_NAME_CHARS) for name in itertools.islice(arguments, MAX_LOGGED_ARGUMENTS)
    )
    return [*kept, f"...(truncated: {len(arguments) - MAX_LOGGED_ARGUMENTS} more)"]


def clip(text: str, limit: int = MAX_LOGGED_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked when it was cut."""
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


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
    if call_logger.isEnabledFor(logging.INFO):
        # makeRecord + handle is Logger.info without looking up the caller's file and line, which the
        # JSON line does not carry and which costs as much as the rest of the record.
        line = call_logger.makeRecord(
            call_logger.name,
            logging.INFO,
            "",
            0,
            "tool call",
            (),
            None,
            extra={"fields": call_fields(record)},
        )
        call_logger.handle(line)


def call_fields(record: ToolCallRecord) -> dict[str, Any]:
    """The structured fields of a call's log line (no argument values, ever)."""
    info = record.info
    fields: dict[str, Any] = {
        "event": "tool_call",
        "request_id": info.request_id,
        "outcome": record.outcome,
        "duration_ms": round(record.duration_ms, 3),
        "tool": record.tool,
        "transport": info.transport,
        "protocol_version": info.protocol_version,
        "client": clip(info.client_id),
        "arguments": record.argument_names,
    }
    if info.session_id is not None:
        fields["session_id"] = info.session_id
    if record.error_type is not None:
        fields["error_type"] = record.error_type
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, service, message and structured fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO 8601 in UTC to the millisecond; the part up to the second is made once per second."""
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int(record.msecs):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record),
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
    # The JSON line carries none of these; LogRecord would look each one up for every line.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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


def tracing_enabled() -> bool:
    return _tracing_enabled


@contextlib.contextmanager
def tool_span(record: ToolCallRecord, traceparent: str | None) -> Iterator[None]:
    """A SERVER span named ``tools/call <tool>`` with the OTel MCP semantic-convention attributes."""
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
