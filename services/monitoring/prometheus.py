"""PromQL through Prometheus's HTTP API: ``/api/v1/query`` (instant) and ``/api/v1/query_range``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from libmcp import ToolError
from services.monitoring._http import HEALTH_TIMEOUT, display_url, error_text, get_bounded, make_client
from services.monitoring.models import MetricsQuery, Sample, Series
from services.monitoring.timespec import rfc3339

MAX_SERIES = 200
MAX_SAMPLES = 10_000
DEFAULT_POINTS = 100
# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS_PER_SERIES = 11_000


class PrometheusClient:
    """One Prometheus server."""

    def __init__(self, base_url: str, *, max_response_bytes: int) -> None:
        self.url = display_url(base_url)
        self.max_response_bytes = max_response_bytes
        self._client = make_client(base_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ready(self) -> str:
        response = await self._client.get("/-/ready", timeout=HEALTH_TIMEOUT)
        if response.status_code != 200:
            raise RuntimeError(f"Prometheus at {self.url} is not ready: HTTP {response.status_code}")
        return f"Prometheus at {self.url} is ready"

    async def instant(self, promql: str, at: datetime) -> MetricsQuery:
        data = await self._get("/api/v1/query", {"query": promql, "time": _seconds(at)}, promql)
        return _result(promql, data)

    async def range(
        self, promql: str, start: datetime, end: datetime, step: timedelta | None
    ) -> MetricsQuery:
        if end <= start:
            raise ToolError(f"end ({rfc3339(end)}) must be after start ({rfc3339(start)})")
        span = (end - start).total_seconds()
        step_s = step.total_seconds() if step else max(1.0, round(span / DEFAULT_POINTS))
        if span / step_s > MAX_POINTS_PER_SERIES:
            raise ToolError(
                f"step {step_s:g}s gives {span / step_s:.0f} points per series over this range; "
                f"Prometheus allows {MAX_POINTS_PER_SERIES}: use a larger step or a shorter range"
            )
        params = {"query": promql, "start": _seconds(start), "end": _seconds(end), "step": f"{step_s:g}"}
        return _result(promql, await self._get("/api/v1/query_range", params, promql))

    async def _get(self, path: str, params: dict[str, str], promql: str) -> dict[str, Any]:
        response = await get_bounded(
            self._client, path, params, backend=f"Prometheus at {self.url}", max_bytes=self.max_response_bytes
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            raise ToolError(
                f"Prometheus at {self.url} answered HTTP {response.status_code}: {error_text(response)}"
            )
        if body["status"] == "error":
            kind = body.get("errorType", "error")
            raise ToolError(
                f"Prometheus refused the query ({kind}): {body.get('error', '')}. Query was: {promql}"
            )
        data: dict[str, Any] = body.get("data", {})
        data["warnings"] = [str(w) for w in body.get("warnings", [])] + [
            str(i) for i in body.get("infos", [])
        ]
        return data


def _result(promql: str, data: dict[str, Any]) -> MetricsQuery:
    result_type = data.get("resultType")
    result = data.get("result")
    warnings = data.get("warnings", [])
    if result_type in ("scalar", "string") and isinstance(result, list):
        return MetricsQuery(
            promql=promql,
            result_type=result_type,
            series=[],
            scalar=_sample(result),
            truncated=False,
            warnings=warnings,
        )
    if result_type not in ("vector", "matrix") or not isinstance(result, list):
        raise ToolError(f"Prometheus answered an unexpected result type {result_type!r}")
    series: list[Series] = []
    budget = MAX_SAMPLES
    truncated = len(result) > MAX_SERIES
    for item in result[:MAX_SERIES]:
        metric = {str(k): str(v) for k, v in item.get("metric", {}).items()}
        if result_type == "vector":
            series.append(Series(metric=metric, value=_sample(item["value"])))
            continue
        values = item.get("values", [])
        if len(values) > budget:
            values, truncated = values[len(values) - budget :], True
        budget -= len(values)
        series.append(Series(metric=metric, values=[_sample(v) for v in values]))
        if budget <= 0:
            truncated = truncated or item is not result[-1]
            break
    return MetricsQuery(
        promql=promql, result_type=result_type, series=series, truncated=truncated, warnings=warnings
    )


def _sample(pair: list[Any]) -> Sample:
    timestamp, value = pair
    return Sample(time=rfc3339(datetime.fromtimestamp(float(timestamp), UTC)), value=str(value))


def _seconds(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}"
