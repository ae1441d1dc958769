"""Arguments and results of the monitoring tools."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from libmcp import ToolInput, ToolOutput
from services.monitoring.timespec import TIME_HELP

# Container logs ---------------------------------------------------------------------------------


class ContainerLogsArgs(ToolInput):
    name: str = Field(
        min_length=1,
        max_length=253,
        description="Pod name (Kubernetes) or container name or ID (Docker), e.g. web-7d9c4-x2x8q, mcp-fetch",
    )
    tail: int = Field(
        default=100,
        ge=1,
        description="How many of the newest lines to return (capped by MONITORING_MAX_LOG_LINES).",
    )
    since: str | None = Field(default=None, description=f"Only lines written after this time: {TIME_HELP}.")
    namespace: str | None = Field(
        default=None,
        description="Kubernetes namespace of the pod; default: the first allowed one. Not used with Docker.",
    )
    container: str | None = Field(
        default=None,
        description="Container inside the pod, needed when the pod has several. Not used with Docker.",
    )


class LogLine(ToolOutput):
    timestamp: str | None = Field(description="When the line was written (RFC 3339), if the backend said.")
    stream: Literal["stdout", "stderr"] | None = Field(
        default=None, description="Output stream (Docker only)."
    )
    message: str = Field(description="The log line, without its trailing newline.")


class ContainerLogs(ToolOutput):
    source: Literal["kubernetes", "docker"] = Field(description="Where the logs were read.")
    name: str = Field(description="The pod or container read.")
    namespace: str | None = Field(default=None, description="Kubernetes namespace (Kubernetes only).")
    container: str | None = Field(default=None, description="Container inside the pod, if one was named.")
    lines: list[LogLine] = Field(description="Log lines, oldest first, newest last.")
    truncated: bool = Field(
        description="True when older lines or parts of long lines were cut to fit the caps."
    )

    def mcp_text(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        if self.container:
            where += f" [{self.container}]"
        header = f"{len(self.lines)} line(s) from {self.source} {where}"
        if self.truncated:
            header += " (truncated to the newest lines that fit the caps)"
        body = [
            " ".join(part for part in (line.timestamp, line.stream, line.message) if part is not None)
            for line in self.lines
        ]
        return "\n".join([header, *body])


# Loki -------------------------------------------------------------------------------------------


class SearchLogsArgs(ToolInput):
    query: str = Field(
        min_length=1,
        max_length=10_000,
        description='LogQL log query, e.g. {container="mcp-fetch"} |= "error" or {app="web"} | json',
    )
    start: str | None = Field(default=None, description=f"Start of the search: {TIME_HELP}. Default: 1h ago.")
    end: str | None = Field(default=None, description=f"End of the search: {TIME_HELP}. Default: now.")
    limit: int = Field(
        default=100,
        ge=1,
        description="Most lines to return, newest kept (capped by MONITORING_MAX_LOG_LINES).",
    )


class LogEntry(ToolOutput):
    timestamp: str = Field(description="When the line was written (RFC 3339, nanoseconds).")
    labels: dict[str, str] = Field(description="The labels of the stream the line belongs to.")
    line: str = Field(description="The log line.")


class LogSearch(ToolOutput):
    query: str = Field(description="The LogQL query run.")
    start: str = Field(description="Start of the searched range (RFC 3339).")
    end: str = Field(description="End of the searched range (RFC 3339).")
    entries: list[LogEntry] = Field(description="Matching lines, oldest first, newest last.")
    truncated: bool = Field(description="True when more lines matched than were returned.")

    def mcp_text(self) -> str:
        header = f"{len(self.entries)} line(s) for {self.query} between {self.start} and {self.end}"
        if self.truncated:
            header += " (more matched: narrow the query or the time range)"
        body = []
        for entry in self.entries:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(entry.labels.items()))
            body.append(f"{entry.timestamp} {{{labels}}} {entry.line}")
        return "\n".join([header, *body])


# Prometheus -------------------------------------------------------------------------------------


class QueryMetricsArgs(ToolInput):
    promql: str = Field(
        min_length=1,
        max_length=10_000,
        description="PromQL expression, e.g. up, rate(mcp_tool_calls_total[5m]), sum by (tool) (up)",
    )
    start: str | None = Field(
        default=None,
        description=f"Start of a range query: {TIME_HELP}. Without start and end the query is instant (now).",
    )
    end: str | None = Field(default=None, description=f"End of a range query: {TIME_HELP}. Default: now.")
    step: str | None = Field(
        default=None,
        description="Range query resolution: a duration (15s, 1m) or seconds; default: about 100 points.",
    )


class Sample(ToolOutput):
    time: str = Field(description="Sample time (RFC 3339).")
    value: str = Field(description="Sample value as Prometheus writes it (a number, NaN, +Inf or -Inf).")


class Series(ToolOutput):
    metric: dict[str, str] = Field(description="Labels of the series, __name__ included.")
    value: Sample | None = Field(default=None, description="The sample of an instant query.")
    values: list[Sample] | None = Field(
        default=None, description="The samples of a range query, oldest first."
    )


class MetricsQuery(ToolOutput):
    promql: str = Field(description="The expression evaluated.")
    result_type: Literal["vector", "matrix", "scalar", "string"] = Field(
        description="Prometheus result type."
    )
    series: list[Series] = Field(description="One entry per series (vector and matrix results).")
    scalar: Sample | None = Field(default=None, description="The result of a scalar or string expression.")
    truncated: bool = Field(description="True when series or samples were left out to fit the caps.")
    warnings: list[str] = Field(default_factory=list, description="Warnings Prometheus returned.")

    def mcp_text(self) -> str:
        if self.scalar is not None:
            return f"{self.promql} = {self.scalar.value} at {self.scalar.time}"
        lines = [f"{len(self.series)} series ({self.result_type}) for {self.promql}"]
        if self.truncated:
            lines[0] += " (truncated: aggregate or narrow the query)"
        lines += [f"warning: {warning}" for warning in self.warnings]
        for series in self.series:
            name = series.metric.get("__name__", "")
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(series.metric.items()) if k != "__name__")
            head = f"{name}{{{labels}}}"
            if series.value is not None:
                lines.append(f"{head} {series.value.value} @ {series.value.time}")
            else:
                points = " ".join(f"{s.value}@{s.time}" for s in series.values or [])
                lines.append(f"{head} {points}")
        return "\n".join(lines)


# System metrics ---------------------------------------------------------------------------------


class CpuMetrics(ToolOutput):
    logical_cpus: int = Field(description="CPUs the host has.")
    usable_cpus: float = Field(description="CPUs this process may use (cgroup cpu.max quota, else affinity).")
    usage_percent: float = Field(description="CPU busy over a short sample, percent of the usable CPUs.")


class MemoryMetrics(ToolOutput):
    total_bytes: int = Field(
        description="Memory available to the host or container (cgroup memory.max if set)."
    )
    used_bytes: int = Field(description="Memory in use (cgroup memory.current in a container).")
    available_bytes: int = Field(description="Memory that can still be used before the limit.")
    percent: float = Field(description="used / total, percent.")
    swap_used_bytes: int = Field(description="Swap in use on the host.")


class LoadMetrics(ToolOutput):
    load1: float = Field(description="1-minute load average of the host.")
    load5: float = Field(description="5-minute load average of the host.")
    load15: float = Field(description="15-minute load average of the host.")


class DiskMetrics(ToolOutput):
    mountpoint: str = Field(description="Mount point.")
    filesystem: str = Field(description="File system type.")
    total_bytes: int = Field(description="Size of the file system.")
    used_bytes: int = Field(description="Bytes in use.")
    free_bytes: int = Field(description="Bytes free for unprivileged users.")
    percent: float = Field(description="used / total, percent.")


class NetworkMetrics(ToolOutput):
    interface: str = Field(description="Network interface.")
    bytes_sent: int = Field(description="Bytes sent.")
    bytes_recv: int = Field(description="Bytes received.")
    packets_sent: int = Field(description="Packets sent.")
    packets_recv: int = Field(description="Packets received.")
    errors_in: int = Field(description="Receive errors.")
    errors_out: int = Field(description="Send errors.")


class CgroupMetrics(ToolOutput):
    memory_max_bytes: int | None = Field(description="memory.max; null when unlimited.")
    memory_current_bytes: int | None = Field(description="memory.current.")
    cpu_quota_cpus: float | None = Field(description="cpu.max quota / period; null when unlimited.")
    cpu_usage_seconds: float | None = Field(description="cpu.stat usage_usec, in seconds.")
    cpu_throttled_periods: int | None = Field(description="cpu.stat nr_throttled.")
    pids_current: int | None = Field(default=None, description="pids.current.")


class SystemMetrics(ToolOutput):
    scope: Literal["container", "host"] = Field(
        description="Whether the figures are a container's (cgroup v2)."
    )
    hostname: str = Field(description="Host name (the pod or container name in a container).")
    uptime_seconds: float = Field(description="Seconds since the host booted.")
    cpu: CpuMetrics = Field(description="CPU count, limit and usage.")
    memory: MemoryMetrics = Field(description="Memory limit and usage.")
    load: LoadMetrics = Field(description="Load averages of the host.")
    disks: list[DiskMetrics] = Field(description="Mounted file systems.")
    network: list[NetworkMetrics] = Field(description="Counters since boot, per interface.")
    cgroup: CgroupMetrics | None = Field(description="The cgroup v2 limits and usage, in a container.")
