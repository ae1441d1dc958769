"""Range and multirange parameters from JSON, in the three forms a caller may hold.

A range parameter is accepted as the object ``execute_sql`` returns for a range (``{"lower", "upper",
"bounds"}`` or ``{"empty": true}``), as PostgreSQL's text form (``"[1,5)"``, ``"(,2026-01-01]"``,
``"empty"``), or as ``[lower, upper]`` (bounds ``[)``). A multirange is a JSON array of ranges in any of
those forms, or its text form (``"{[1,3), [5,7)}"``). Bounds are converted to the range's subtype by the
caller's ``coerce_bound``; text bounds of a user-defined range go to asyncpg as text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

# Built-in range and multirange types and the subtype their bounds hold.
RANGE_SUBTYPES = {
    "int4range": "int4",
    "int8range": "int8",
    "numrange": "numeric",
    "daterange": "date",
    "tsrange": "timestamp",
    "tstzrange": "timestamptz",
}
MULTIRANGE_RANGES = {
    "int4multirange": "int4range",
    "int8multirange": "int8range",
    "nummultirange": "numrange",
    "datemultirange": "daterange",
    "tsmultirange": "tsrange",
    "tstzmultirange": "tstzrange",
}
_BOUNDS = frozenset({"[)", "[]", "()", "(]"})
_OBJECT_KEYS = frozenset({"lower", "upper", "bounds", "empty"})

BoundCoercer = Callable[[Any], Any]


class RangeError(ValueError):
    """A JSON value is not a range or multirange in any accepted form."""


def coerce_range(value: Any, coerce_bound: BoundCoercer) -> asyncpg.Range | None:
    """A JSON range (object, text or ``[lower, upper]``) as an :class:`asyncpg.Range`."""
    if value is None:
        return None
    if isinstance(value, dict):
        return _range_from_object(value, coerce_bound)
    if isinstance(value, str):
        return _range_from_text(value, coerce_bound)
    if isinstance(value, list) and len(value) == 2:
        return asyncpg.Range(_bound(value[0], coerce_bound), _bound(value[1], coerce_bound))
    raise RangeError(
        'expected a range: {"lower": ..., "upper": ..., "bounds": "[)"}, {"empty": true}, '
        f'PostgreSQL text such as "[1,5)", or [lower, upper]; got {_describe(value)}'
    )


def coerce_multirange(value: Any, coerce_bound: BoundCoercer) -> list[asyncpg.Range] | None:
    """A JSON multirange (an array of ranges, or text such as ``"{[1,3), [5,7)}"``) as a list of ranges."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.startswith("{") and text.endswith("}")):
            raise RangeError(
                f"expected a multirange's text in braces such as '{{[1,3), [5,7)}}', got {value!r}"
            )
        items: list[Any] = _split_multirange(text[1:-1])
    elif isinstance(value, list):
        items = value
    else:
        raise RangeError(f"expected a JSON array of ranges or a multirange's text, got {_describe(value)}")
    ranges = []
    for index, item in enumerate(items):
        try:
            range_ = coerce_range(item, coerce_bound)
        except ValueError as exc:  # RangeError, or a bound the subtype refuses
            raise RangeError(f"range {index}: {exc}") from None
        if range_ is None:
            raise RangeError(f"range {index}: a multirange cannot hold a null range")
        ranges.append(range_)
    return ranges


def _range_from_object(value: dict[str, Any], coerce_bound: BoundCoercer) -> asyncpg.Range:
    unknown = sorted(set(value) - _OBJECT_KEYS)
    if unknown:
        raise RangeError(
            f"unknown range key(s) {', '.join(map(repr, unknown))}: use lower, upper, bounds or empty"
        )
    empty = value.get("empty", False)
    if not isinstance(empty, bool):
        raise RangeError(f"'empty' must be true or false, got {empty!r}")
    if empty:
        if value.keys() - {"empty"}:
            raise RangeError("an empty range has no lower, upper or bounds")
        return asyncpg.Range(empty=True)
    bounds = value.get("bounds", "[)")
    if not isinstance(bounds, str) or bounds not in _BOUNDS:
        raise RangeError(f"'bounds' must be one of '[)', '[]', '(]', '()', got {bounds!r}")
    return asyncpg.Range(
        _bound(value.get("lower"), coerce_bound),
        _bound(value.get("upper"), coerce_bound),
        lower_inc=bounds[0] == "[",
        upper_inc=bounds[1] == "]",
    )


def _range_from_text(value: str, coerce_bound: BoundCoercer) -> asyncpg.Range:
    text = value.strip()
    if text.lower() == "empty":
        return asyncpg.Range(empty=True)
    if len(text) < 3 or text[0] not in "[(" or text[-1] not in ")]":
        raise RangeError(f"expected a range's text such as '[1,5)', '(,10]' or 'empty', got {value!r}")
    fields = _split_fields(text[1:-1], value)
    if len(fields) != 2:
        raise RangeError(f"a range's text has exactly one comma between its bounds outside quotes: {value!r}")
    lower, upper = (_bound(field, coerce_bound) for field in fields)
    return asyncpg.Range(lower, upper, lower_inc=text[0] == "[", upper_inc=text[-1] == "]")


def _split_fields(body: str, original: str) -> list[str | None]:
    """The comma-separated bounds of a range's text; an empty, unquoted bound is unbounded (``None``)."""
    fields: list[str | None] = []
    current: list[str] = []
    quoted = was_quoted = False
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            current.append(body[index + 1])
            index += 2
            continue
        if char == '"':
            if quoted and body[index + 1 : index + 2] == '"':
                current.append('"')
                index += 2
                continue
            quoted = not quoted
            was_quoted = True
        elif char == "," and not quoted:
            fields.append(_field(current, was_quoted))
            current, was_quoted = [], False
        else:
            current.append(char)
        index += 1
    if quoted:
        raise RangeError(f"a quote in the range's text is not closed: {original!r}")
    fields.append(_field(current, was_quoted))
    return fields


def _field(chars: list[str], was_quoted: bool) -> str | None:
    text = "".join(chars)
    if not was_quoted:
        text = text.strip()
        if not text:
            return None
    return text


def _split_multirange(body: str) -> list[str]:
    """The ranges of a multirange's text, split at the commas between them."""
    items: list[str] = []
    start = depth = 0
    quoted = False
    for index, char in enumerate(body):
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "[(":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(body[start:index])
            start = index + 1
    tail = body[start:]
    if tail.strip() or items:
        items.append(tail)
    return items


def _bound(value: Any, coerce_bound: BoundCoercer) -> Any:
    return None if value is None else coerce_bound(value)


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"an array of {len(value)} item(s)"
    return type(value).__name__
