"""Timestamps fetched as PostgreSQL's text, and rewritten as ISO 8601 in UTC.

Decoding a timestamp from binary in Python costs about 1.5 µs a value, more than the rest of a row. When
the session prints timestamps in ISO style in UTC (the usual case), they are fetched as PostgreSQL's text
instead, with ``str`` as the decoder so that no Python code runs per value, and a whole column is
rewritten at once (:func:`timestamp_column`). asyncpg cannot put a text codec inside a range or a
composite value, and would misread the fields of an anonymous record: the statements that hold those
switch their connection to the binary codecs for the call (``StatementRunner``).
"""

from __future__ import annotations

import re
from typing import Any, cast

import asyncpg

from services.postgres.datetimes import (
    INT64_MAX,
    INT64_MIN,
    MAX_PYTHON_US,
    MIN_PYTHON_US,
    US_PER_DAY,
    civil_from_days,
    days_from_civil,
    format_clock,
    format_timestamp,
    parse_timestamp,
    timestamp_decoder,
)

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
                encoder=lambda v, utc=utc: parse_timestamp(v, utc),
                decoder=timestamp_decoder(suffix),
                format="tuple",
            )


def timestamp_column(values: list[str | None], utc: bool) -> list[str | None]:
    """A column of timestamps in PostgreSQL's text as ISO 8601, the same text the binary decoders give.

    The usual values (years 1 to 9999, UTC) are checked and rewritten for the whole column at once, by
    string methods over its values joined as lines; a column with any other value is rewritten one value
    at a time.
    """
    if None in values:
        present = [value for value in values if value is not None]
    else:
        present = cast("list[str]", values)
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
        return cast("list[str | None]", rewritten)
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
    days = days_from_civil(astronomical, int(month), int(day)) - 10957  # since 2000-01-01
    seconds = (int(hour) * 60 + int(minute)) * 60 + int(second)
    if offset_sign:
        east = (int(offset[0]) * 60 + int(offset[1] or 0)) * 60 + int(offset[2] or 0)
        seconds -= east if offset_sign == "+" else -east
    microseconds = (days * 86_400 + seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0"))
    return format_timestamp(microseconds, utc)


def _timestamp_parameter_text(value: Any, utc: bool) -> str:
    """A JSON parameter as the text PostgreSQL reads for ``timestamp``/``timestamptz``."""
    microseconds = parse_timestamp(value, utc)[0]
    if microseconds in (INT64_MAX, INT64_MIN):
        return "infinity" if microseconds > 0 else "-infinity"
    if MIN_PYTHON_US <= microseconds <= MAX_PYTHON_US:
        return format_timestamp(microseconds, utc)
    # A time zone moved it out of years 1 to 9999: PostgreSQL's own spelling of the era.
    days, clock = divmod(microseconds, US_PER_DAY)
    year, month, day = civil_from_days(days + 10957)
    era = f"{year:04d}" if year > 0 else f"{1 - year:04d}"
    text = f"{era}-{month:02d}-{day:02d} {format_clock(clock)}" + ("+00" if utc else "")
    return text if year > 0 else text + " BC"
