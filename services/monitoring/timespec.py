"""Times and durations as tools accept them: RFC 3339, Unix seconds, or a duration ago (``15m``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_FRACTION = re.compile(r"\.(\d+)")

TIME_HELP = "an RFC 3339 time (2026-11-26T10:00:00Z), Unix seconds, or a duration ago (30s, 15m, 2h, 1d)"


class TimeSpecError(ValueError):
    """A time or duration that cannot be read; the message says what is accepted."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h30m``, ``2d`` or plain seconds (``300``) as a positive timedelta."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        position, seconds = 0, 0.0
        for match in _DURATION.finditer(value):
            if match.start() != position:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            position = match.end()
        if position != len(value) or not value:
            raise TimeSpecError(f"{text!r} is not a duration (use e.g. 30s, 15m, 2h, 1d)") from None
    if not 0 < seconds < 10 * 365 * 86400:
        raise TimeSpecError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def parse_time(text: str, now: datetime) -> datetime:
    """An absolute time from ``text`` (see :data:`TIME_HELP`); ``now`` anchors durations and ``now``."""
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    if value[:1].isdigit() and any(sep in value for sep in "-T:"):
        return _parse_rfc3339(text, value)
    try:
        return now - parse_duration(value)
    except TimeSpecError:
        raise TimeSpecError(f"{text!r} is not a time: use {TIME_HELP}") from None


def _parse_rfc3339(original: str, value: str) -> datetime:
    # fromisoformat takes at most 6 fractional digits; Kubernetes and Loki write nanoseconds.
    normalised = _FRACTION.sub(lambda m: "." + m.group(1)[:6], value.replace("z", "Z"), count=1)
    try:
        parsed = datetime.fromisoformat(normalised)
    except ValueError:
        raise TimeSpecError(f"{original!r} is not a time: use {TIME_HELP}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as ``2026-11-26T10:00:00.123456Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_unix_nanos(nanos: int) -> str:
    """A nanosecond Unix timestamp (Loki's) as RFC 3339 with all nine digits."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{fraction:09d}Z"
