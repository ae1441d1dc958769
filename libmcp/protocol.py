"""JSON-RPC 2.0 framing and MCP protocol facts: error codes, revisions, envelope keys.

Nothing here does I/O. Transports decode bytes with :func:`decode_message`, the server dispatches
what comes out, and :func:`error_response` / :func:`result_response` turn the outcome back into
wire dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

# JSON-RPC 2.0 and MCP error codes.
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
# 2026-07-28 (SEP-2575) transport-level codes.
HEADER_MISMATCH: Final = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY: Final = -32021
UNSUPPORTED_PROTOCOL_VERSION: Final = -32022

# Protocol revisions, oldest first.
HANDSHAKE_VERSIONS: Final[tuple[str, ...]] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS: Final[tuple[str, ...]] = ("2026-07-28",)
LATEST_HANDSHAKE_VERSION: Final = HANDSHAKE_VERSIONS[-1]
LATEST_MODERN_VERSION: Final = MODERN_VERSIONS[-1]
# The revision a Streamable HTTP request without MCP-Protocol-Version is assumed to speak (2025-03-26 rule).
DEFAULT_HTTP_VERSION: Final = "2025-03-26"
# From 2025-06-18 on, JSON-RPC batches are no longer part of the protocol.
BATCHES_REMOVED_IN: Final = "2025-06-18"

# The per-request envelope of 2026-07-28, carried in params._meta.
PROTOCOL_VERSION_META_KEY: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_META_KEY: Final = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_META_KEY: Final = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_META_KEY: Final = "io.modelcontextprotocol/serverInfo"

# HTTP status for a JSON-RPC error code on the 2026-07-28 transport; unmapped codes answer 200.
MODERN_ERROR_HTTP_STATUS: Final[dict[int, int]] = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}

RequestId = str | int


class RpcError(Exception):
    """A JSON-RPC error to send back to the caller as-is."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(slots=True)
class Message:
    """One decoded JSON-RPC message: a request (has ``id``), a notification, or a client response."""

    method: str | None
    params: dict[str, Any] = field(default_factory=dict)
    id: RequestId | None = None
    has_id: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_request(self) -> bool:
        return self.has_id and self.method is not None

    @property
    def is_notification(self) -> bool:
        return not self.has_id and self.method is not None

    @property
    def is_response(self) -> bool:
        return self.method is None


def parse_json(body: bytes) -> Any:
    """Decode a request body, raising ``RpcError(PARSE_ERROR)`` for anything that is not JSON."""
    try:
        return orjson.loads(body)
    except (orjson.JSONDecodeError, ValueError, RecursionError) as exc:
        raise RpcError(PARSE_ERROR, f"Parse error: {exc}") from None


def to_message(obj: Any) -> Message:
    """Validate one JSON-RPC object, raising ``RpcError(INVALID_REQUEST)`` naming what is wrong."""
    if not isinstance(obj, dict):
        raise RpcError(INVALID_REQUEST, "Invalid request: a JSON-RPC message must be an object")
    if obj.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0"')
    has_id = "id" in obj
    request_id = obj.get("id")
    if has_id and (request_id.__class__ is bool or not isinstance(request_id, (str, int))):
        raise RpcError(INVALID_REQUEST, 'Invalid request: "id" must be a string or an integer')
    method = obj.get("method")
    if method is None:
        if has_id and ("result" in obj or "error" in obj):
            return Message(method=None, id=request_id, has_id=True, raw=obj)
        raise RpcError(INVALID_REQUEST, 'Invalid request: "method" is missing')
    if not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, 'Invalid request: "method" must be a string')
    params = obj.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise RpcError(INVALID_REQUEST, 'Invalid request: "params" must be an object')
    return Message(method, params, request_id, has_id, obj)


def request_id_of(obj: Any) -> RequestId | None:
    """The id of a possibly malformed message, for echoing in an error response."""
    if isinstance(obj, dict):
        request_id = obj.get("id")
        if isinstance(request_id, str | int) and not isinstance(request_id, bool):
            return request_id
    return None


def result_response(request_id: RequestId | None, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: RequestId | None, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_dict()}


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def negotiate_handshake_version(requested: Any) -> str:
    """The revision to answer an ``initialize`` with: the one asked for if known, else the newest."""
    if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS:
        return requested
    return LATEST_HANDSHAKE_VERSION


def is_modern_envelope(params: dict[str, Any]) -> bool:
    """Whether params carry the 2026-07-28 per-request envelope (any protocolVersion key in _meta)."""
    meta = params.get("_meta")
    return isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta


def unsupported_version_error(requested: Any) -> RpcError:
    return RpcError(
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"supported": [*HANDSHAKE_VERSIONS, *MODERN_VERSIONS], "requested": requested},
    )
