"""JSON parameters as the Python objects asyncpg encodes for the statement's parameter types."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from asyncpg.types import Type

from services.postgres.ranges import (
    MULTIRANGE_RANGES,
    RANGE_SUBTYPES,
    BoundCoercer,
    RangeError,
    coerce_multirange,
    coerce_range,
)


class ParameterError(ValueError):
    """A JSON parameter cannot become a value of the statement's parameter type."""


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
        return to_float(value)
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


def to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"expected a number, got {value!r}") from None
