"""The monitoring service: container logs, LogQL search, system metrics and PromQL queries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from libmcp import CheckContext, CheckResult, Service, StartupContext, ToolContext, ToolError
from services.monitoring import system_metrics
from services.monitoring.cluster import detect_cluster
from services.monitoring.docker_logs import DockerLogs, docker_address
from services.monitoring.loki import LokiClient
from services.monitoring.models import (
    ContainerLogs,
    ContainerLogsArgs,
    LogSearch,
    MetricsQuery,
    QueryMetricsArgs,
    SearchLogsArgs,
    SystemMetrics,
)
from services.monitoring.prometheus import PrometheusClient
from services.monitoring.settings import MonitoringSettings
from services.monitoring.timespec import TimeSpecError, parse_duration, parse_time, rfc3339

if TYPE_CHECKING:
    # Imported at run time only when a cluster is detected: it loads ``kubernetes`` (about 25 MB).
    from services.monitoring.kube_logs import KubeLogs

VERSION = version("mcp-sse")

NO_LOG_BACKEND = (
    "get_container_logs needs Kubernetes (an in-cluster service account) or a Docker Engine socket "
    "(DOCKER_HOST, or /var/run/docker.sock mounted read-only); neither is available here"
)


@dataclass(frozen=True, slots=True)
class MonitoringState:
    """The backends found at start-up; ``None`` for one that is not there, and why for container logs."""

    container_logs: KubeLogs | DockerLogs | None
    container_logs_problem: str
    loki: LokiClient | None
    prometheus: PrometheusClient | None


service: Service[MonitoringSettings, MonitoringState] = Service(
    "monitoring",
    version=VERSION,
    title="Monitoring",
    instructions=(
        "Read container or pod logs (get_container_logs), search logs with LogQL (search_logs), "
        "see CPU, memory, disk and network of this host or container (get_system_metrics), and "
        "query Prometheus with PromQL (query_metrics, when configured). Results are capped."
    ),
    settings_class=MonitoringSettings,
)
Context = ToolContext[MonitoringSettings, MonitoringState]


@service.tool(title="Get container logs", read_only=True, idempotent=True, open_world=False)
async def get_container_logs(args: ContainerLogsArgs, ctx: Context) -> ContainerLogs:
    """Return the newest log lines of a container, oldest first and newest last, with timestamps.

    In Kubernetes `name` is a pod (and `container` one of its containers, needed when it has
    several), read only in the allowed namespaces; under docker compose `name` is a container name
    or ID and stdout and stderr lines are marked. At most `tail` lines (capped by
    MONITORING_MAX_LOG_LINES) and MONITORING_MAX_LOG_BYTES bytes are returned; `truncated` says when
    older lines or the end of a very long line were cut. Errors: unknown pod or container, a
    namespace that is not allowed, or no log backend where the service runs.
    """
    since = _time("since", args.since) if args.since else None
    backend = ctx.state.container_logs
    if backend is None:
        raise ToolError(ctx.state.container_logs_problem)
    if isinstance(backend, DockerLogs):
        if args.namespace is not None or args.container is not None:
            raise ToolError(
                f"namespace and container apply to Kubernetes pods; logs here come from {backend.describe()}"
            )
        return await backend.read(args.name, tail=args.tail, since=since)
    return await backend.read(
        args.name, namespace=args.namespace, container=args.container, tail=args.tail, since=since
    )


@service.tool(title="Search logs (LogQL)", read_only=True, idempotent=True, open_world=False)
async def search_logs(args: SearchLogsArgs, ctx: Context) -> LogSearch:
    """Search logs in Loki with a LogQL log query and return the newest matching lines with their labels.

    Lines come oldest first, newest last, each with its timestamp and stream labels; at most `limit`
    lines (capped by MONITORING_MAX_LOG_LINES) and MONITORING_MAX_LOG_BYTES bytes. The range defaults
    to the last hour. A malformed query returns Loki's parse error; metric queries (rate, count_over_time)
    belong to query_metrics. Needs LOKI_URL.
    """
    loki = ctx.state.loki
    if loki is None:
        raise ToolError("search_logs needs LOKI_URL (the Loki base URL), which is not set for this service")
    now = datetime.now(UTC)
    end = _time("end", args.end, now) if args.end else now
    start = _time("start", args.start, now) if args.start else end - timedelta(hours=1)
    if start >= end:
        raise ToolError(f"start ({rfc3339(start)}) must be before end ({rfc3339(end)})")
    entries, truncated = await loki.query_range(args.query, start, end, args.limit)
    return LogSearch(
        query=args.query, start=rfc3339(start), end=rfc3339(end), entries=entries, truncated=truncated
    )


@service.tool(title="Get system metrics", read_only=True, idempotent=True, open_world=False)
async def get_system_metrics(ctx: Context) -> SystemMetrics:
    """Return CPU, memory, load, disk and network figures of the host or container this service runs in.

    In a container the cgroup v2 limits and usage (memory.max, memory.current, cpu.max, cpu.stat)
    replace the host's memory total and CPU count; `scope` says which. CPU usage is sampled over
    a quarter of a second. Network counters are totals since boot.
    """
    return await asyncio.to_thread(system_metrics.collect, ctx.settings.platform.cgroup_root)


@service.tool(
    title="Query Prometheus (PromQL)",
    read_only=True,
    idempotent=True,
    open_world=False,
    enabled=lambda settings: bool(settings.prometheus_url),
    enabled_when="PROMETHEUS_URL is set",
)
async def query_metrics(args: QueryMetricsArgs, ctx: Context) -> MetricsQuery:
    """Evaluate a PromQL expression in Prometheus: instant (now) without start/end, else over a range.

    A range query uses `start` (default: 1h before `end`), `end` (default: now) and `step` (default:
    about 100 points). Returns each series with its labels and samples; at most 200 series and
    10,000 samples (`truncated` says when more exist). Prometheus errors such as bad_data (a
    malformed expression) are returned as they come.
    """
    prometheus = ctx.state.prometheus
    if prometheus is None:  # not listed without PROMETHEUS_URL, so not called either
        raise ToolError("query_metrics needs PROMETHEUS_URL, which is not set for this service")
    now = datetime.now(UTC)
    if args.start is None and args.end is None:
        if args.step is not None:
            raise ToolError("step applies to range queries: give start and/or end too")
        return await prometheus.instant(args.promql, now)
    end = _time("end", args.end, now) if args.end else now
    start = _time("start", args.start, now) if args.start else end - timedelta(hours=1)
    try:
        step = parse_duration(args.step) if args.step else None
    except TimeSpecError as exc:
        raise ToolError(f"step: {exc}") from None
    return await prometheus.range(args.promql, start, end, step)


# Backends ---------------------------------------------------------------------------------------


@service.lifespan
async def open_backends(ctx: StartupContext[MonitoringSettings]) -> AsyncIterator[MonitoringState]:
    settings = ctx.settings
    container_logs, container_logs_problem = _container_logs_backend(settings)
    loki = (
        LokiClient(
            settings.loki_url,
            max_lines=settings.monitoring_max_log_lines,
            max_bytes=settings.monitoring_max_log_bytes,
            max_response_bytes=settings.monitoring_max_response_bytes,
        )
        if settings.loki_url
        else None
    )
    prometheus = (
        PrometheusClient(settings.prometheus_url, max_response_bytes=settings.monitoring_max_response_bytes)
        if settings.prometheus_url
        else None
    )
    try:
        yield MonitoringState(container_logs, container_logs_problem, loki, prometheus)
    finally:
        await _close_backends(container_logs, loki, prometheus)


def _container_logs_backend(settings: MonitoringSettings) -> tuple[KubeLogs | DockerLogs | None, str]:
    caps: dict[str, Any] = {
        "max_lines": settings.monitoring_max_log_lines,
        "max_bytes": settings.monitoring_max_log_bytes,
    }
    cluster = detect_cluster(settings.platform)
    if cluster is not None:
        from services.monitoring.kube_logs import KubeLogs

        try:
            return KubeLogs(cluster, settings.monitoring_namespaces, **caps), ""
        except RuntimeError as exc:
            return None, f"get_container_logs cannot use Kubernetes: {exc}"
    address = docker_address(settings.docker_host, settings.platform.docker_socket)
    if address is None:
        return None, NO_LOG_BACKEND
    return DockerLogs(address, **caps), ""


async def _close_backends(
    container_logs: KubeLogs | DockerLogs | None, loki: LokiClient | None, prometheus: PrometheusClient | None
) -> None:
    if isinstance(container_logs, DockerLogs):
        await container_logs.aclose()
    elif container_logs is not None:
        await asyncio.to_thread(container_logs.close)
    for client in (loki, prometheus):
        if client is not None:
            await client.aclose()


# Health -----------------------------------------------------------------------------------------


@service.health_check("container_logs")
async def container_logs_health(ctx: CheckContext[MonitoringSettings, MonitoringState]) -> CheckResult:
    backend = ctx.state.container_logs
    if backend is None:
        problem = ctx.state.container_logs_problem
        return CheckResult("not_configured" if problem == NO_LOG_BACKEND else "down", problem)
    return await _probe(backend.version, backend.describe())


@service.health_check("loki")
async def loki_health(ctx: CheckContext[MonitoringSettings, MonitoringState]) -> CheckResult:
    loki = ctx.state.loki
    if loki is None:
        return CheckResult("not_configured", "LOKI_URL is not set; search_logs is unavailable")
    return await _probe(loki.ready, f"Loki at {loki.url}")


@service.health_check("prometheus")
async def prometheus_health(ctx: CheckContext[MonitoringSettings, MonitoringState]) -> CheckResult:
    prometheus = ctx.state.prometheus
    if prometheus is None:
        return CheckResult("not_configured", "PROMETHEUS_URL is not set; query_metrics is not listed")
    return await _probe(prometheus.ready, f"Prometheus at {prometheus.url}")


async def _probe(check: Any, name: str) -> CheckResult:
    try:
        return CheckResult("ok", await check())
    except Exception as exc:
        return CheckResult("down", f"{name}: {type(exc).__name__}: {exc}")


def _time(field: str, value: str, now: datetime | None = None) -> datetime:
    try:
        return parse_time(value, now or datetime.now(UTC))
    except TimeSpecError as exc:
        raise ToolError(f"{field}: {exc}") from None
