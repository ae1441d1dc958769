"""The codecs installed on every pooled connection, so that asyncpg decodes values JSON-ready.

Codecs for the date/time types, ``real`` and ``json``/``jsonb`` (:func:`install_codecs`) work in binary
or tuple format, so they also apply inside arrays, ranges and composite values. Everything else is
finished after decoding, by ``result_values.column_converter``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import Any

import asyncpg

from services.postgres.datetimes import (
    INT64_MIN,
    UINT64_MAX,
    decode_date,
    decode_time,
    format_clock,
    format_interval,
    format_offset,
    interval_tuple,
    parse_date,
    time_tuple,
    timetz_tuple,
)
from services.postgres.parameters import to_float
from services.postgres.result_values import special_float
from services.postgres.timestamp_text import prints_timestamps_as_text, use_timestamp_text


async def install_codecs(connection: asyncpg.Connection) -> None:
    """Register the codecs this module relies on (no round trip: all are built-in types)."""
    await use_timestamp_text(connection, prints_timestamps_as_text(connection))
    tuple_codecs: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "date": (parse_date, decode_date),
        "time": (time_tuple, decode_time),
        "timetz": (timetz_tuple, lambda t: format_clock(t[0]) + format_offset(-t[1])),
        "interval": (interval_tuple, lambda t: format_interval(*t)),
    }
    for name, (encoder, decoder) in tuple_codecs.items():
        await connection.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format="tuple"
        )
    await connection.set_type_codec(
        "float4",
        schema="pg_catalog",
        encoder=lambda v: struct.pack("!f", to_float(v)),
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


def _shortest_float4(value: float) -> float | str:
    if math.isnan(value) or math.isinf(value):
        return special_float(value)
    # The shortest decimal that reads back as the same float4, as PostgreSQL prints it.
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.unpack("!f", struct.pack("!f", candidate))[0] == value:
            return candidate
    return value


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
