"""PostgreSQL's dates, times, timestamps and intervals, between its binary units and ISO 8601 text.

PostgreSQL counts days and microseconds from 2000-01-01 and stores years far beyond Python's 1 to 9999, so
the conversions here work on those counts directly, in any year: formatting (``YYYY-MM-DD``, expanded
years with a sign, ``infinity``), the decoders the connection codecs run once per value (table-driven,
see below), and parsing JSON parameters into PostgreSQL's units.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from services.postgres.parameters import ParameterError

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
_EPOCH_DAYS = 730120  # date(2000, 1, 1).toordinal(): PostgreSQL counts from 2000-01-01
_EPOCH = dt.datetime(2000, 1, 1)
_EPOCH_UTC = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
US_PER_DAY = 86_400_000_000
# The span Python's datetime covers (years 1 to 9999), in PostgreSQL's units since 2000-01-01.
_MIN_PYTHON_DAYS = dt.date.min.toordinal() - _EPOCH_DAYS
_MAX_PYTHON_DAYS = dt.date.max.toordinal() - _EPOCH_DAYS
MIN_PYTHON_US = _MIN_PYTHON_DAYS * US_PER_DAY
MAX_PYTHON_US = (_MAX_PYTHON_DAYS + 1) * US_PER_DAY - 1

# Formatting -------------------------------------------------------------------------------------


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count from 1970-01-01, proleptic Gregorian, any year (H. Hinnant)."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    year = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return (year + 1 if month <= 2 else year), month, day


def _format_date_days(days_since_2000: int) -> str:
    if _MIN_PYTHON_DAYS <= days_since_2000 <= _MAX_PYTHON_DAYS:
        return dt.date.fromordinal(days_since_2000 + _EPOCH_DAYS).isoformat()
    year, month, day = civil_from_days(days_since_2000 + 10957)
    # ISO 8601 expanded years: astronomical numbering (1 BC is year 0, -0001 is 2 BC), a sign beyond 9999.
    if 0 <= year <= 9999:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return f"{year:+05d}-{month:02d}-{day:02d}"


def format_clock(microseconds: int) -> str:
    seconds, fraction = divmod(microseconds, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    return text


def format_offset(seconds_east: int) -> str:
    sign = "+" if seconds_east >= 0 else "-"
    minutes, second = divmod(abs(seconds_east), 60)
    hour, minute = divmod(minutes, 60)
    text = f"{sign}{hour:02d}:{minute:02d}"
    return text + (f":{second:02d}" if second else "")


def format_timestamp(microseconds: int, utc: bool) -> str:
    if MIN_PYTHON_US <= microseconds <= MAX_PYTHON_US:
        # Years 1..9999: datetime's C code, then PostgreSQL's habit of trimming trailing zeros.
        text = (_EPOCH + dt.timedelta(0, 0, microseconds)).isoformat()
        if microseconds % 1_000_000:
            text = text.rstrip("0")
    elif microseconds == INT64_MAX:
        return "infinity"
    elif microseconds == INT64_MIN:
        return "-infinity"
    else:
        days, clock = divmod(microseconds, US_PER_DAY)
        text = f"{_format_date_days(days)}T{format_clock(clock)}"
    return text + "+00:00" if utc else text


def format_interval(months: int, days: int, microseconds: int) -> str:
    """An ISO 8601 duration with PostgreSQL's per-field signs (``P1Y2M-3DT4H``); zero is ``PT0S``."""
    years, month = int(months / 12), months - int(months / 12) * 12
    date_part = "".join(
        f"{value}{unit}" for value, unit in ((years, "Y"), (month, "M"), (days, "D")) if value
    )
    sign = "-" if microseconds < 0 else ""
    seconds, fraction = divmod(abs(microseconds), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    time_part = "".join(f"{sign}{value}{unit}" for value, unit in ((hour, "H"), (minute, "M")) if value)
    if second or fraction:
        time_part += f"{sign}{second}" + (f".{fraction:06d}".rstrip("0") if fraction else "") + "S"
    if not date_part and not time_part:
        return "PT0S"
    return "P" + date_part + ("T" + time_part if time_part else "")


# Parsing parameters ------------------------------------------------------------------------------

_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<y>-?\d+)Y)?(?:(?P<mo>-?\d+)M)?(?:(?P<w>-?\d+)W)?(?:(?P<d>-?\d+)D)?"
    r"(?:T(?:(?P<h>-?\d+)H)?(?:(?P<mi>-?\d+)M)?(?:(?P<s>-?\d+(?:[.,]\d+)?)S)?)?$"
)


def parse_timestamp(value: Any, utc: bool) -> tuple[int]:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "infinity":
            return (INT64_MAX,)
        if lowered == "-infinity":
            return (INT64_MIN,)
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ParameterError(f"expected an ISO 8601 timestamp, got {value!r}") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise ParameterError(f"expected an ISO 8601 timestamp string, got {type(value).__name__}")
    if utc:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        delta = aware - _EPOCH_UTC
    else:
        delta = value.replace(tzinfo=None) - _EPOCH
    return ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds,)


def parse_date(value: Any) -> tuple[int]:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "infinity":
            return (INT32_MAX,)
        if lowered == "-infinity":
            return (INT32_MIN,)
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ParameterError(f"expected an ISO 8601 date (YYYY-MM-DD), got {value!r}") from None
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise ParameterError(f"expected an ISO 8601 date string, got {type(value).__name__}")
    return (value.toordinal() - _EPOCH_DAYS,)


def _parse_time(value: Any) -> dt.time:
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            raise ParameterError(
                f"expected an ISO 8601 time (HH:MM[:SS[.ffffff]][+HH:MM]), got {value!r}"
            ) from None
    if isinstance(value, dt.time):
        return value
    raise ParameterError(f"expected an ISO 8601 time string, got {type(value).__name__}")


def time_tuple(value: Any) -> tuple[int]:
    clock = _parse_time(value)
    return (((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond,)


def timetz_tuple(value: Any) -> tuple[int, int]:
    clock = _parse_time(value)
    offset = clock.utcoffset()
    seconds_east = int(offset.total_seconds()) if offset is not None else 0
    micros = ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond
    return (micros, -seconds_east)


def interval_tuple(value: Any) -> tuple[int, int, int]:
    if isinstance(value, dt.timedelta):
        return (0, value.days, value.seconds * 1_000_000 + value.microseconds)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, 0, round(value * 1_000_000))
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if match is None or value.strip() in {"P", "PT"}:
        raise ParameterError(
            f"expected an ISO 8601 duration such as 'P1DT2H30M' or a number of seconds, got {value!r} "
            "(for PostgreSQL's own syntax pass text and cast it: $1::text::interval)"
        )
    sign = -1 if match["sign"] == "-" else 1
    part = {key: int(match[key] or 0) for key in ("y", "mo", "w", "d", "h", "mi")}
    seconds = Decimal((match["s"] or "0").replace(",", "."))
    micros = (part["h"] * 3600 + part["mi"] * 60) * 1_000_000 + int(seconds * 1_000_000)
    return (sign * (part["y"] * 12 + part["mo"]), sign * (part["w"] * 7 + part["d"]), sign * micros)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 of a proleptic Gregorian date, any year (the inverse of civil_from_days)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


# Decoding dates and times runs once per value of a result, so it is table-driven: the text of a day is
# memoised (rows of one result tend to share days) and the clock is read from precomputed strings.
_DAY_TEXT: dict[int, str] = {}
_DAY_TEXT_MAX = 4096
_MINUTE_TEXT = tuple(f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECOND_TEXT = tuple(f"{second:02d}" for second in range(60))


def _day_text(days: int) -> str:
    """``YYYY-MM-DD`` of a day count from 2000-01-01 (any year PostgreSQL stores), memoised."""
    text = _DAY_TEXT.get(days)
    if text is None:
        if len(_DAY_TEXT) >= _DAY_TEXT_MAX:
            _DAY_TEXT.clear()
        text = _DAY_TEXT[days] = _format_date_days(days)
    return text


def timestamp_decoder(suffix: str) -> Callable[[tuple[int]], str]:
    """The decoder of ``timestamp`` (``suffix=""``) or ``timestamptz`` (``"+00:00"``): the same text as
    :func:`format_timestamp`, in one function call per value."""

    def decode(
        value: tuple[int],
        day_text: dict[int, str] = _DAY_TEXT,
        minute_text: tuple[str, ...] = _MINUTE_TEXT,
        second_text: tuple[str, ...] = _SECOND_TEXT,
    ) -> str:
        microseconds = value[0]
        if microseconds >= INT64_MAX or microseconds <= INT64_MIN:
            return "infinity" if microseconds > 0 else "-infinity"
        days, clock = divmod(microseconds, US_PER_DAY)
        seconds, fraction = divmod(clock, 1_000_000)
        minutes, second = divmod(seconds, 60)
        text = (day_text.get(days) or _day_text(days)) + "T" + minute_text[minutes] + second_text[second]
        if fraction:
            text += f".{fraction:06d}".rstrip("0")
        return text + suffix

    return decode


def decode_time(value: tuple[int]) -> str:
    seconds, fraction = divmod(value[0], 1_000_000)
    minutes, second = divmod(seconds, 60)
    if minutes >= 1440:  # 24:00:00, the one value past the last minute of a day
        return format_clock(value[0])
    text = _MINUTE_TEXT[minutes] + _SECOND_TEXT[second]
    return text + f".{fraction:06d}".rstrip("0") if fraction else text


def decode_date(value: tuple[int]) -> str:
    days = value[0]
    if days == INT32_MAX:
        return "infinity"
    if days == INT32_MIN:
        return "-infinity"
    return _DAY_TEXT.get(days) or _day_text(days)
