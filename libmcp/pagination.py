"""Cursor pagination of the list methods: an opaque cursor that holds the list's kind and an offset."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from libmcp import protocol
from libmcp.protocol import RpcError

_ECHO_CHARS = 100


def encode_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode()


def decode_cursor(kind: str, cursor: Any) -> int:
    """The offset a cursor of this list holds (0 without one); ``INVALID_PARAMS`` for any other."""
    if cursor is None:
        return 0
    if not isinstance(cursor, str):
        raise RpcError(protocol.INVALID_PARAMS, "Invalid params: cursor must be a string")
    unknown = RpcError(protocol.INVALID_PARAMS, f"Invalid params: unknown cursor {cursor[:_ECHO_CHARS]!r}")
    try:
        found, _, offset = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        value = int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise unknown from None
    if found != kind or value < 0:
        raise unknown
    return value


def page(kind: str, key: str, items: list[Any], cursor: Any, size: int) -> dict[str, Any]:
    """One page of ``items`` under ``key``, with ``nextCursor`` when more follow."""
    offset = decode_cursor(kind, cursor)
    result: dict[str, Any] = {key: items[offset : offset + size]}
    if offset + size < len(items):
        result["nextCursor"] = encode_cursor(kind, offset + size)
    return result
