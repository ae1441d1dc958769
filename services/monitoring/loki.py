"""LogQL searches through Loki's HTTP API (``GET /loki/api/v1/query_range``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from libmcp import ToolError
from services.monitoring._http import HEALTH_TIMEOUT, display_url, error_text, get_bounded, make_client
from services.monitoring.log_window import LogWindow, clip_line
from services.monitoring.models import LogEntry
from services.monitoring.timespec import from_unix_nanos


class LokiClient:
    """One Loki server; results are bounded by the line and byte caps given at construction."""

    def __init__(self, base_url: str, *, max_lines: int, max_bytes: int, max_response_bytes: int) -> None:
        self.url = display_url(base_url)
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.max_response_bytes = max_response_bytes
        self._client = make_client(base_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ready(self) -> str:
        """Loki's ``/ready`` answer; raises when Loki is unreachable or not ready."""
        response = await self._client.get("/ready", timeout=HEALTH_TIMEOUT)
        if response.status_code != 200:
            raise RuntimeError(
                f"Loki at {self.url} is not ready: HTTP {response.status_code} {error_text(response)}"
            )
        return f"Loki at {self.url} is ready"

    async def query_range(
        self, query: str, start: datetime, end: datetime, limit: int
    ) -> tuple[list[LogEntry], bool]:
        """The newest ``limit`` lines matching ``query`` between ``start`` and ``end``, oldest first,
        and whether lines were left out."""
        limit = min(limit, self.max_lines)
        params = {
            "query": query,
            "start": str(_unix_nanos(start)),
            "end": str(_unix_nanos(end)),
            "limit": str(limit),
            "direction": "backward",
        }
        response = await get_bounded(
            self._client,
            "/loki/api/v1/query_range",
            params,
            backend=f"Loki at {self.url}",
            max_bytes=self.max_response_bytes,
        )
        if response.status_code == 400:
            raise ToolError(f"Loki rejected the query: {error_text(response)}. Query was: {query}")
        if response.status_code != 200:
            raise ToolError(
                f"Loki at {self.url} answered HTTP {response.status_code}: {error_text(response)}"
            )
        try:
            data = response.json().get("data", {})
        except (ValueError, AttributeError):
            raise ToolError(f"Loki at {self.url} answered something other than query_range JSON") from None
        result_type = data.get("resultType")
        if result_type != "streams":
            raise ToolError(
                f"search_logs returns log lines, but this is a metric query (Loki answered {result_type}). "
                'Use a log query such as {app="web"} |= "error", without rate(), count_over_time() or sum().'
            )
        return self._bounded(data.get("result", []), limit)

    def _bounded(self, streams: list[dict[str, Any]], limit: int) -> tuple[list[LogEntry], bool]:
        lines: list[tuple[int, dict[str, str], str]] = []
        for stream in streams:
            labels = {str(key): str(value) for key, value in (stream.get("stream") or {}).items()}
            lines += [(int(ts), labels, str(text)) for ts, text, *_ in stream.get("values", [])]
        lines.sort(key=lambda item: item[0])
        window: LogWindow[LogEntry] = LogWindow(limit, self.max_bytes)
        clipped = False
        for nanos, labels, text in lines:
            text, cut = clip_line(text.rstrip("\n"), self.max_bytes)
            clipped = clipped or cut
            window.add(
                LogEntry(timestamp=from_unix_nanos(nanos), labels=labels, line=text), len(text.encode())
            )
        # Loki stops at `limit`: reaching it means older matches were left out.
        return window.items, window.truncated or clipped or len(lines) >= limit


def _unix_nanos(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
