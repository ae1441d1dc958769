"""PostgreSQL values to JSON and JSON parameters to PostgreSQL, faithfully.

Results: integers and booleans stay JSON numbers and booleans; ``numeric`` becomes a string with its exact
digits; ``real``/``double precision`` become numbers (``"NaN"``, ``"Infinity"``, ``"-Infinity"`` as strings);
dates, times and timestamps become ISO 8601 strings (``"infinity"``/``"-infinity"`` kept); intervals become
ISO 8601 durations; ``json``/``jsonb`` become JSON values; ``bytea`` becomes base64; UUIDs, network
addresses and unknown types become their text form; arrays become (nested) JSON arrays; ranges become
``{"lower", "upper", "bounds"}`` objects; composite values become objects; NULL becomes ``null``.

Codecs for the date/time types, ``real`` and ``json``/``jsonb`` are installed on every pooled connection
(:func:`install_codecs`); they work in binary or tuple format, so they also apply inside arrays, ranges
and composite values. Everything else is finished by :func:`column_converter` after decoding.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
from asyncpg.types import Type

from services.postgres.ranges import (
    MULTIRANGE_RANGES,
    RANGE_SUBTYPES,
    BoundCoercer,
    RangeError,
    coerce_multirange,
    coerce_range,
)

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
_EPOCH_DAYS = 730120  # date(2000, 1, 1).toordinal(): PostgreSQL counts from 2000-01-01
_EPOCH = dt.datetime(2000, 1, 1)
_EPOCH_UTC = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_US_PER_DAY = 86_400_000_000
# The span Python's datetime covers (years 1 to 9999), in PostgreSQL's units since 2000-01-01.
_MIN_PYTHON_DAYS = dt.date.min.toordinal() - _EPOCH_DAYS
_MAX_PYTHON_DAYS = dt.date.max.toordinal() - _EPOCH_DAYS
_MIN_PYTHON_US = _MIN_PYTHON_DAYS * _US_PER_DAY
_MAX_PYTHON_US = (_MAX_PYTHON_DAYS + 1) * _US_PER_DAY - 1


# Formatting -------------------------------------------------------------------------------------


def _civil_from_days(days: int) -> tuple[int, int, int]:
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
    year, month, day = _civil_from_days(days_since_2000 + 10957)
    # ISO 8601 expanded years: astronomical numbering (1 BC is year 0, -0001 is 2 BC), a sign beyond 9999.
    if 0 <= year <= 9999:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return f"{year:+05d}-{month:02d}-{day:02d}"


def _format_clock(microseconds: int) -> str:
    seconds, fraction = divmod(microseconds, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    return text


def _format_offset(seconds_east: int) -> str:
    sign = "+" if seconds_east >= 0 else "-"
    minutes, second = divmod(abs(seconds_east), 60)
    hour, minute = divmod(minutes, 60)
    text = f"{sign}{hour:02d}:{minute:02d}"
    return text + (f":{second:02d}" if second else "")


def _format_timestamp(microseconds: int, utc: bool) -> str:
    if _MIN_PYTHON_US <= microseconds <= _MAX_PYTHON_US:
        # Years 1..9999: datetime's C code, then PostgreSQL's habit of trimming trailing zeros.
        text = (_EPOCH + dt.timedelta(0, 0, microseconds)).isoformat()
        if microseconds % 1_000_000:
            text = text.rstrip("0")
    elif microseconds == INT64_MAX:
        return "infinity"
    elif microseconds == INT64_MIN:
        return "-infinity"
    else:
        days, clock = divmod(microseconds, _US_PER_DAY)
        text = f"{_format_date_days(days)}T{_format_clock(clock)}"
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


def _shortest_float4(value: float) -> float | str:
    if math.isnan(value) or math.isinf(value):
        return _special_float(value)
    # The shortest decimal that reads back as the same float4, as PostgreSQL prints it.
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.unpack("!f", struct.pack("!f", candidate))[0] == value:
            return candidate
    return value


def _special_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# Parsing parameters ------------------------------------------------------------------------------


class ParameterError(ValueError):
    """A JSON parameter cannot become a value of the statement's parameter type."""


_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<y>-?\d+)Y)?(?:(?P<mo>-?\d+)M)?(?:(?P<w>-?\d+)W)?(?:(?P<d>-?\d+)D)?"
    r"(?:T(?:(?P<h>-?\d+)H)?(?:(?P<mi>-?\d+)M)?(?:(?P<s>-?\d+(?:[.,]\d+)?)S)?)?$"
)


def _parse_timestamp(value: Any, utc: bool) -> tuple[int]:
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


def _parse_date(value: Any) -> tuple[int]:
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


def _time_tuple(value: Any) -> tuple[int]:
    clock = _parse_time(value)
    return (((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond,)


def _timetz_tuple(value: Any) -> tuple[int, int]:
    clock = _parse_time(value)
    offset = clock.utcoffset()
    seconds_east = int(offset.total_seconds()) if offset is not None else 0
    micros = ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond
    return (micros, -seconds_east)


def _interval_tuple(value: Any) -> tuple[int, int, int]:
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


def _encode_json(value: Any) -> bytes:
    # A string is taken as JSON text already ('{"a": 1}'); anything else is serialised.
    return (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode()


class JsonText(str):
    """A json or jsonb value kept as its text: nested too deep to become JSON values here."""

    __slots__ = ()


def _decode_json(data: bytes | str) -> Any:
    """JSON text as JSON-ready values: numbers beyond what a JSON encoder can write exactly (integers past
    64 bits, magnitudes past a double) keep their digits as strings, like ``numeric``. A value nested
    deeper than Python's parser goes (about 1,000 levels; PostgreSQL allows more) stays PostgreSQL's text
    of it, a :class:`JsonText`."""
    try:
        return json.loads(data, parse_int=_json_int, parse_float=_json_float)
    except RecursionError:
        return JsonText(data.decode() if isinstance(data, bytes) else data)


def _json_int(text: str) -> int | str:
    value = int(text)
    return value if INT64_MIN <= value <= UINT64_MAX else text


def _json_float(text: str) -> float | str:
    value = float(text)
    return value if value - value == 0.0 else text  # 1e400: inf as a float, its digits as a string


# Codecs on every pooled connection ---------------------------------------------------------------


async def install_codecs(connection: asyncpg.Connection) -> None:
    """Register the codecs this module relies on (no round trip: all are built-in types)."""
    await use_timestamp_text(connection, prints_timestamps_as_text(connection))
    tuple_codecs: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "date": (_parse_date, _decode_date),
        "time": (_time_tuple, _decode_time),
        "timetz": (_timetz_tuple, lambda t: _format_clock(t[0]) + _format_offset(-t[1])),
        "interval": (_interval_tuple, lambda t: format_interval(*t)),
    }
    for name, (encoder, decoder) in tuple_codecs.items():
        await connection.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format="tuple"
        )
    await connection.set_type_codec(
        "float4",
        schema="pg_catalog",
        encoder=lambda v: struct.pack("!f", _to_float(v)),
        decoder=lambda data: _shortest_float4(struct.unpack("!f", data)[0]),
        format="binary",
    )
    await connection.set_type_codec(
        "json", schema="pg_catalog", encoder=_encode_json, decoder=_decode_json, format="binary"
    )
    await connection.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda v: b"\x01" + _encode_json(v),
        decoder=lambda data: _decode_json(data[1:]),
        format="binary",
    )


# Timestamps as text ------------------------------------------------------------------------------
# Decoding a timestamp from binary in Python costs about 1.5 µs a value, more than the rest of a row. When
# the session prints timestamps in ISO style in UTC (the usual case), they are fetched as PostgreSQL's text
# instead, with ``str`` as the decoder so that no Python code runs per value, and a whole column is
# rewritten at once (:func:`timestamp_column`). asyncpg cannot put a text codec inside a range or a
# composite value, and would misread the fields of an anonymous record: the statements that hold those
# switch their connection to the binary codecs for the call (``StatementRunner``).

UTC_ZONES = frozenset(
    {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}
    | {"GMT0", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "Greenwich", "Etc/Greenwich"}
)
TIMESTAMP_OIDS = {1114: False, 1184: True}  # timestamp, timestamptz: whether the type has a time zone
TIMESTAMP_ARRAY_OIDS = {1115: False, 1185: True}
# Result types asyncpg cannot decode with a text codec for timestamps inside: anonymous records.
RECORD_OIDS = frozenset({2249, 2287})
_DIGITS_AS_NINES = str.maketrans("0123456789", "9" * 10)
_TIMESTAMP_TEXT = re.compile(
    r"([+-]?)(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
    r"(?:([+-])(\d\d)(?::?(\d\d)(?::?(\d\d))?)?)?( BC)?"
)


def prints_timestamps_as_text(connection: asyncpg.Connection) -> bool:
    """Whether the session's settings (reported by the server) make timestamp text cheap to rewrite."""
    settings = connection.get_settings()
    date_style = getattr(settings, "DateStyle", "")
    return date_style.startswith("ISO") and getattr(settings, "TimeZone", "") in UTC_ZONES


async def use_timestamp_text(connection: asyncpg.Connection, as_text: bool) -> None:
    """Fetch and send ``timestamp``/``timestamptz`` as text (``as_text``) or binary. Changing it drops the
    connection's statement cache (asyncpg does), so it is done only when a statement needs it."""
    for name, utc in (("timestamp", False), ("timestamptz", True)):
        if as_text:
            await connection.set_type_codec(
                name,
                schema="pg_catalog",
                encoder=lambda v, utc=utc: _timestamp_parameter_text(v, utc),
                decoder=str,
                format="text",
            )
        else:
            suffix = "+00:00" if utc else ""
            await connection.set_type_codec(
                name,
                schema="pg_catalog",
                encoder=lambda v, utc=utc: _parse_timestamp(v, utc),
                decoder=_timestamp_decoder(suffix),
                format="tuple",
            )


def timestamp_column(values: list[str | None], utc: bool) -> list[str | None]:
    """A column of timestamps in PostgreSQL's text as ISO 8601, the same text the binary decoders give.

    The usual values (years 1 to 9999, UTC) are checked and rewritten for the whole column at once, by
    string methods over its values joined as lines; a column with any other value is rewritten one value
    at a time.
    """
    present = values if None not in values else [value for value in values if value is not None]
    if not present:
        return values
    lines = "\n" + "\n".join(present) + "\n"
    if not _in_usual_shape(lines, len(present), utc):
        return [timestamp_from_text(value, utc) for value in values]
    lines = lines.replace(" ", "T")
    if utc:
        lines = lines.replace("+00\n", "+00:00\n")
    rewritten = lines[1:-1].split("\n")
    if present is values:
        return rewritten
    texts = iter(rewritten)
    return [None if value is None else next(texts) for value in values]


def _in_usual_shape(lines: str, count: int, utc: bool) -> bool:
    """Whether each of the ``count`` lines (each after a newline) is ``YYYY-MM-DD HH:MM:SS[.ffffff]``,
    then ``+00`` if ``utc``.

    With every digit read as 9: each line starts with the date and time (so no year has five digits, and
    none is ``infinity``), there is no other space (no `` BC``), and with ``utc`` each line ends in ``+00``.
    """
    shape = lines.translate(_DIGITS_AS_NINES)
    return (
        shape.count("\n9999-99-99 99:99:99") == count
        and shape.count(" ") == count
        and (not utc or lines.count("+00\n") == count)
    )


def timestamp_from_text(value: Any, utc: bool) -> Any:
    """One timestamp (or a nested list of them) from PostgreSQL's text, in any era and offset, as ISO
    8601 in UTC. Text already in that form comes back unchanged, and text of another DateStyle is
    passed on as PostgreSQL wrote it."""
    if isinstance(value, list):
        return [timestamp_from_text(item, utc) for item in value]
    if value is None or value in ("infinity", "-infinity"):
        return value
    match = _TIMESTAMP_TEXT.fullmatch(value)
    if match is None:
        return value
    sign, year, month, day, hour, minute, second, fraction, offset_sign, *offset, bc = match.groups()
    astronomical = -int(year) if sign == "-" else int(year)
    if bc:
        astronomical = 1 - astronomical
    days = _days_from_civil(astronomical, int(month), int(day)) - 10957  # since 2000-01-01
    seconds = (int(hour) * 60 + int(minute)) * 60 + int(second)
    if offset_sign:
        east = (int(offset[0]) * 60 + int(offset[1] or 0)) * 60 + int(offset[2] or 0)
        seconds -= east if offset_sign == "+" else -east
    microseconds = (days * 86_400 + seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0"))
    return _format_timestamp(microseconds, utc)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 of a proleptic Gregorian date, any year (the inverse of _civil_from_days)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _timestamp_parameter_text(value: Any, utc: bool) -> str:
    """A JSON parameter as the text PostgreSQL reads for ``timestamp``/``timestamptz``."""
    microseconds = _parse_timestamp(value, utc)[0]
    if microseconds in (INT64_MAX, INT64_MIN):
        return "infinity" if microseconds > 0 else "-infinity"
    if _MIN_PYTHON_US <= microseconds <= _MAX_PYTHON_US:
        return _format_timestamp(microseconds, utc)
    # A time zone moved it out of years 1 to 9999: PostgreSQL's own spelling of the era.
    days, clock = divmod(microseconds, _US_PER_DAY)
    year, month, day = _civil_from_days(days + 10957)
    era = f"{year:04d}" if year > 0 else f"{1 - year:04d}"
    text = f"{era}-{month:02d}-{day:02d} {_format_clock(clock)}" + ("+00" if utc else "")
    return text if year > 0 else text + " BC"


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


def _timestamp_decoder(suffix: str) -> Callable[[tuple[int]], str]:
    """The decoder of ``timestamp`` (``suffix=""``) or ``timestamptz`` (``"+00:00"``): the same text as
    :func:`_format_timestamp`, in one function call per value."""

    def decode(
        value: tuple[int],
        day_text: dict[int, str] = _DAY_TEXT,
        minute_text: tuple[str, ...] = _MINUTE_TEXT,
        second_text: tuple[str, ...] = _SECOND_TEXT,
    ) -> str:
        microseconds = value[0]
        if microseconds >= INT64_MAX or microseconds <= INT64_MIN:
            return "infinity" if microseconds > 0 else "-infinity"
        days, clock = divmod(microseconds, _US_PER_DAY)
        seconds, fraction = divmod(clock, 1_000_000)
        minutes, second = divmod(seconds, 60)
        text = (day_text.get(days) or _day_text(days)) + "T" + minute_text[minutes] + second_text[second]
        if fraction:
            text += f".{fraction:06d}".rstrip("0")
        return text + suffix

    return decode


def _decode_time(value: tuple[int]) -> str:
    seconds, fraction = divmod(value[0], 1_000_000)
    minutes, second = divmod(seconds, 60)
    if minutes >= 1440:  # 24:00:00, the one value past the last minute of a day
        return _format_clock(value[0])
    text = _MINUTE_TEXT[minutes] + _SECOND_TEXT[second]
    return text + f".{fraction:06d}".rstrip("0") if fraction else text


def _decode_date(value: tuple[int]) -> str:
    days = value[0]
    if days == INT32_MAX:
        return "infinity"
    if days == INT32_MIN:
        return "-infinity"
    return _DAY_TEXT.get(days) or _day_text(days)


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"expected a number, got {value!r}") from None


# Results -----------------------------------------------------------------------------------------

# Built-in types, by OID (the same in every PostgreSQL), whose decoded values are JSON-ready as they come:
# integers, booleans and text, and the types the codecs above decode to strings or JSON values. Arrays
# of them decode to nested lists of such values, so they need no work either.
JSON_READY_OIDS = frozenset(
    {
        16,  # bool
        20,  # int8
        21,  # int2
        23,  # int4
        26,  # oid
        28,  # xid
        29,  # cid
        25,  # text
        1043,  # varchar
        1042,  # bpchar
        19,  # name
        700,  # float4 (its codec spells NaN and the infinities)
        1114,  # timestamp
        1184,  # timestamptz
        1082,  # date
        1083,  # time
        1266,  # timetz
        1186,  # interval
        790,  # money
        142,  # xml
        3614,  # tsvector
        3615,  # tsquery
        114,  # json
        3802,  # jsonb
        # ... and their arrays, in the same order
        1000,
        1016,
        1005,
        1007,
        1028,
        1011,
        1012,
        1009,
        1015,
        1014,
        1003,
        1021,
        1115,
        1185,
        1182,
        1183,
        1270,
        1187,
        791,
        143,
        3643,
        3645,
        199,
        3807,
    }
)


def to_json(value: Any, char_as_text: bool = False) -> Any:
    """One decoded value (of any type, at any nesting) as a JSON-ready value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _special_float(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.decode("latin-1") if char_as_text else base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [to_json(item, char_as_text) for item in value]
    if isinstance(value, asyncpg.Record):
        return {key: to_json(item, char_as_text) for key, item in value.items()}
    if isinstance(value, asyncpg.Range):
        if value.isempty:
            return {"empty": True}
        bounds = ("[" if value.lower_inc else "(") + ("]" if value.upper_inc else ")")
        return {"lower": to_json(value.lower), "upper": to_json(value.upper), "bounds": bounds}
    if isinstance(value, asyncpg.BitString):
        return value.as_string()
    if isinstance(value, asyncpg.Path):
        return {"closed": value.is_closed, "points": [to_json(point) for point in value]}
    if isinstance(value, tuple):
        return [to_json(item, char_as_text) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item, char_as_text) for key, item in value.items()}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return format_interval(0, value.days, value.seconds * 1_000_000 + value.microseconds)
    return str(value)


def column_converter(column_type: Type, timestamps_as_text: bool = False) -> Callable[[Any], Any] | None:
    """The function that finishes one column's values (``None`` included), chosen once per column from its
    type OID, or ``None`` when the decoded values are JSON-ready already. ``timestamps_as_text``: the
    connection fetched timestamps as text (:func:`use_timestamp_text`); a column of timestamps themselves
    is rewritten whole by :func:`timestamp_column`, not by this function."""
    if timestamps_as_text:
        utc = TIMESTAMP_ARRAY_OIDS.get(column_type.oid)
        if utc is not None:
            return lambda value: timestamp_from_text(value, utc)
    if column_type.oid in JSON_READY_OIDS:
        return None
    converter = _SCALAR_CONVERTERS.get(column_type.oid)
    if converter is not None:
        return converter
    char_as_text = column_type.name.removesuffix("[]") == "char"  # the one-byte type "char" (not bpchar)
    return lambda value: to_json(value, char_as_text)


def _numeric(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _float8(value: float | None) -> float | str | None:
    return value if value is None or value - value == 0.0 else _special_float(value)


def _bytea(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _text_of(value: Any) -> str | None:
    return None if value is None else str(value)


def _char(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _bits(value: asyncpg.BitString | None) -> str | None:
    return None if value is None else value.as_string()


def _format_lsn(value: Any) -> Any:
    if isinstance(value, list):
        return [_format_lsn(item) for item in value]
    if value is None:
        return None
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


# Parameters --------------------------------------------------------------------------------------

_INTEGER_TYPES = frozenset({"int2", "int4", "int8", "oid", "xid", "cid"})
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "citext", "unknown"})


def coerce_parameter(value: Any, parameter_type: Type) -> Any:
    """A JSON value as the Python object asyncpg encodes for ``parameter_type`` (arrays element-wise)."""
    if value is None:
        return None
    name = parameter_type.name
    if name.endswith("[]") or parameter_type.kind == "array":
        if not isinstance(value, list):
            raise ParameterError(f"expected a JSON array for type {name}, got {type(value).__name__}")
        element = Type(
            parameter_type.oid, name.removesuffix("[]").lstrip("_"), "scalar", parameter_type.schema
        )
        return [coerce_parameter(item, element) for item in value]
    if parameter_type.kind == "range" or name in RANGE_SUBTYPES:
        return _range_parameter(value, name, coerce_range)
    if parameter_type.kind == "multirange" or name in MULTIRANGE_RANGES:
        return _range_parameter(value, MULTIRANGE_RANGES.get(name, ""), coerce_multirange)
    if name in _INTEGER_TYPES:
        return _to_int(value)
    if name in {"float4", "float8"}:
        return _to_float(value)
    if name == "numeric":
        return _to_decimal(value)
    if name == "bool":
        return _to_bool(value)
    if name == "bytea":
        return _to_bytes(value)
    if name in _TEXT_TYPES:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if name == "uuid" and isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            raise ParameterError(f"expected a UUID, got {value!r}") from None
    return value


def _range_parameter(value: Any, range_name: str, coerce: Callable[[Any, BoundCoercer], Any]) -> Any:
    subtype = RANGE_SUBTYPES.get(range_name)
    bound_type = Type(0, subtype, "scalar", "pg_catalog") if subtype else None
    try:
        return coerce(
            value, lambda bound: bound if bound_type is None else coerce_parameter(bound, bound_type)
        )
    except RangeError as exc:
        raise ParameterError(str(exc)) from None


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ParameterError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ParameterError(f"expected an integer, got {value!r}")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ParameterError(f"expected a number or a numeric string, got {value!r}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ParameterError(f"expected a number or a numeric string, got {value!r}") from None


_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParameterError(f"expected a boolean, got {value!r}")


def _to_bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ParameterError(
            f"expected base64 text (or '\\x' followed by hex) for bytea, got {type(value).__name__}"
        )
    try:
        if value.startswith("\\x"):
            return bytes.fromhex(value[2:])
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise ParameterError("expected base64 text (or '\\x' followed by hex) for bytea") from None


_SCALAR_CONVERTERS: dict[int, Callable[[Any], Any]] = {
    1700: _numeric,
    701: _float8,
    17: _bytea,
    2950: _text_of,  # uuid
    869: _text_of,  # inet
    650: _text_of,  # cidr
    18: _char,  # "char"
    1560: _bits,  # bit
    1562: _bits,  # varbit
    3220: _format_lsn,  # pg_lsn
}
