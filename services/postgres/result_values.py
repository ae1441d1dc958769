"""Decoded PostgreSQL values as JSON-ready values, one column at a time.

Integers and booleans stay JSON numbers and booleans; ``numeric`` becomes a string with its exact
digits; ``real``/``double precision`` become numbers (``"NaN"``, ``"Infinity"``, ``"-Infinity"`` as strings);
dates, times and timestamps become ISO 8601 strings (``"infinity"``/``"-infinity"`` kept); intervals become
ISO 8601 durations; ``json``/``jsonb`` become JSON values; ``bytea`` becomes base64; UUIDs, network
addresses and unknown types become their text form; arrays become (nested) JSON arrays; ranges become
``{"lower", "upper", "bounds"}`` objects; composite values become objects; NULL becomes ``null``.

The date/time types, ``real`` and ``json``/``jsonb`` arrive JSON-ready from the codecs of
``connection_codecs``; :func:`column_converter` finishes the rest.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
from asyncpg.types import Type

from services.postgres.datetimes import format_interval
from services.postgres.timestamp_text import TIMESTAMP_ARRAY_OIDS, timestamp_from_text

# Built-in types, by OID (the same in every PostgreSQL), whose decoded values are JSON-ready as they come:
# integers, booleans and text, and the types the codecs of ``connection_codecs`` decode to strings or JSON
# values. Arrays of them decode to nested lists of such values, so they need no work either.
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
        return value if math.isfinite(value) else special_float(value)
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
    connection fetched timestamps as text (``timestamp_text.use_timestamp_text``); a column of timestamps
    themselves is rewritten whole by ``timestamp_text.timestamp_column``, not by this function."""
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
    return value if value is None or value - value == 0.0 else special_float(value)


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


def special_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


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
