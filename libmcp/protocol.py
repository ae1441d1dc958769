"""JSON-RPC 2.0 framing and MCP protocol facts: error codes, revisions, envelope keys.

Nothing here does I/O. Transports decode bytes with :func:`decode_message`, the server dispatches
what comes out, and :func:`error_response` / :func:`result_response` turn the outcome back into
wire dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

# JSON-RPC 2.0 and MCP error codes.
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
# MCP: resources/read of a URI that names no resource.
RESOURCE_NOT_FOUND: Final = -32002
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

Era = Literal["handshake", "modern", "rpc"]
# Methods every revision answers; the handshake ones exist only where there is a handshake.
HANDSHAKE_METHODS: Final = frozenset({"initialize", "ping"})
COMMON_METHODS: Final = frozenset(
    {
        "tools/list",
        "tools/call",
        "server/discover",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "prompts/list",
        "prompts/get",
        "completion/complete",
    }
)
# The results that carry ttlMs and cacheScope in a revision with cacheable_lists (2026-07-28).
CACHEABLE_METHODS: Final = frozenset(
    {"tools/list", "resources/list", "resources/templates/list", "resources/read", "prompts/list"}
)


@dataclass(frozen=True, slots=True)
class Revision:
    """What differs between the protocol eras, so that no code outside this module compares versions.

    ``stamps_results``: every result carries ``resultType`` and the server's info in ``_meta``.
    ``cacheable_lists``: list results carry ``ttlMs`` and ``cacheScope``.
    ``error_status``: the HTTP status of an error answer, by JSON-RPC code (200 when absent).
    """

    era: Era
    methods: frozenset[str]
    stamps_results: bool = False
    cacheable_lists: bool = False
    error_status: dict[int, int] = field(default_factory=dict)

    def answers(self, method: str) -> bool:
        return method in self.methods

    def http_status(self, code: int | None) -> int:
        return 200 if code is None else self.error_status.get(code, 200)

    def allows_batches(self, version: str) -> bool:
        """JSON-RPC batches: on /rpc always, in the handshake era only before 2025-06-18."""
        if self.era == "rpc":
            return True
        return self.era == "handshake" and version in HANDSHAKE_VERSIONS and version < BATCHES_REMOVED_IN


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


# The three eras a request can arrive in: the initialize handshake (2024-11-05 .. 2025-11-25, on /mcp
# and the legacy SSE transport), the stateless per-request envelope (2026-07-28, on /mcp), and plain
# JSON-RPC on /rpc (no handshake needed, but initialize and ping are answered for scripts that send them).
HANDSHAKE: Final = Revision("handshake", HANDSHAKE_METHODS | COMMON_METHODS)
MODERN: Final = Revision(
    "modern",
    COMMON_METHODS,
    stamps_results=True,
    cacheable_lists=True,
    error_status=MODERN_ERROR_HTTP_STATUS,
)
RPC: Final = Revision("rpc", HANDSHAKE_METHODS | COMMON_METHODS)


def route_streamable_http(version_header: str | None, body: Any) -> Revision | RpcError:
    """The revision a ``POST /mcp`` speaks, from its ``MCP-Protocol-Version`` header and its body.

    A 2026-07-28 header, an unknown header value beside the per-request ``_meta`` envelope, or no header
    and the envelope: the stateless revision, whose envelope check then holds the header to the body.
    No header and no envelope: the handshake era at 2025-03-26; a handshake-era header: that revision.
    The error is for an unknown version without an envelope, or a handshake header beside an envelope.
    """
    params = body.get("params") if isinstance(body, dict) else None
    envelope = isinstance(params, dict) and is_modern_envelope(params)
    if version_header is None:
        return MODERN if envelope else HANDSHAKE
    if version_header not in HANDSHAKE_VERSIONS:
        if version_header not in MODERN_VERSIONS and not envelope:
            return unsupported_version_error(version_header)
        return MODERN
    if envelope:
        return RpcError(
            HEADER_MISMATCH,
            f"MCP-Protocol-Version header {version_header} does not match the request envelope's "
            "protocol version",
        )
    return HANDSHAKE
