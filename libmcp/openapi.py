"""The OpenAPI description of a service, completed with every answer its routes can give.

FastAPI documents each route as ``200 application/json`` with an empty schema. :func:`document` replaces
that with what the code really sends: every status of every operation, its media type, a JSON schema
of its body, and the headers that go with it (``Retry-After``, ``WWW-Authenticate``, ``Allow``).
Where each answer comes from:

* the guards (``libmcp/security.py``, run before every route): 403 for a disallowed ``Origin`` and, when
  bearer tokens are configured, 401 with ``WWW-Authenticate``, on every path but the open ones
  (``/health``); 413 for a POST body over ``MCP_MAX_BODY_BYTES``;
* the app (``libmcp/app.py``): 503 + ``Retry-After`` on any route when shutdown cuts a request off,
  405 + ``Allow: POST`` on ``GET``/``DELETE /mcp``, ``/health`` 200 or 503 (degraded), ``/metrics``
  in the Prometheus text format;
* the transports (``libmcp/transports/``): JSON-RPC replies (200), 202 for notifications and client
  responses, 204 on ``/rpc`` when nothing needs an answer, 400 for malformed JSON-RPC, 404 for an
  unknown method in the 2026-07-28 revision and 429 + ``Retry-After`` for a tool call over the rate
  limit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from libmcp.endpoints import OPEN_PATHS, endpoint
from libmcp.observability import METRICS_CONTENT_TYPE
from libmcp.protocol import MODERN_ERROR_HTTP_STATUS

JSON = "application/json"
SECURITY_SCHEME = "bearerAuth"

JSONRPC_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["jsonrpc"],
    "properties": {
        "jsonrpc": {"type": "string", "enum": ["2.0"]},
        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "method": {"type": "string"},
        "params": {"type": "object"},
    },
}
JSONRPC_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        JSON: {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/JsonRpcMessage"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/JsonRpcMessage"}},
                ]
            }
        }
    },
}

_REQUEST_ID = {"type": ["string", "integer", "null"]}
COMPONENT_SCHEMAS: dict[str, Any] = {
    "JsonRpcMessage": JSONRPC_MESSAGE_SCHEMA,
    "JsonRpcErrorObject": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "integer"},
            "message": {"type": "string"},
            "data": {"description": "More about the error, e.g. retryAfter (seconds) for a rate limit"},
        },
    },
    "JsonRpcResponse": {
        "type": "object",
        "required": ["jsonrpc", "id"],
        "properties": {
            "jsonrpc": {"type": "string", "enum": ["2.0"]},
            "id": _REQUEST_ID,
            "result": {"type": "object"},
            "error": {"$ref": "#/components/schemas/JsonRpcErrorObject"},
        },
        "oneOf": [{"required": ["result"]}, {"required": ["error"]}],
    },
    "JsonRpcErrorResponse": {
        "type": "object",
        "required": ["jsonrpc", "id", "error"],
        "properties": {
            "jsonrpc": {"type": "string", "enum": ["2.0"]},
            "id": _REQUEST_ID,
            "error": {"$ref": "#/components/schemas/JsonRpcErrorObject"},
        },
    },
    "JsonRpcReply": {
        "description": "One JSON-RPC response, or a non-empty array of them for a batch",
        "oneOf": [
            {"$ref": "#/components/schemas/JsonRpcResponse"},
            {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/JsonRpcResponse"}},
        ],
    },
    "GuardError": {
        "description": "A request refused before any route or by the legacy message endpoint",
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Health": {
        "type": "object",
        "required": ["status", "service", "version", "uptime", "tools_count", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "service": {"type": "string"},
            "version": {"type": "string"},
            "uptime": {"type": "number", "description": "seconds since start-up"},
            "tools_count": {"type": "integer"},
            "checks": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["status", "detail"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "down", "not_configured"]},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    },
    "Discovery": {
        "type": "object",
        "required": ["name", "version", "protocolVersions", "transports", "authentication", "tools"],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": ["string", "null"]},
            "version": {"type": "string"},
            "instructions": {"type": ["string", "null"]},
            "protocolVersions": {"type": "array", "items": {"type": "string"}},
            "transports": {"type": "object", "additionalProperties": {"type": "string"}},
            "health": {"type": "string"},
            "metrics": {"type": "string"},
            "authentication": {"type": "string", "enum": ["bearer", "none"]},
            "tools": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "description"],
                    "properties": {
                        "name": {"type": "string"},
                        "title": {"type": ["string", "null"]},
                        "description": {"type": "string"},
                        "annotations": {"type": "object"},
                    },
                },
            },
        },
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _header(description: str, schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


RETRY_AFTER = _header("Seconds to wait before retrying", {"type": "integer", "minimum": 1})


def _answer(
    description: str,
    schema: dict[str, Any] | None = None,
    *,
    media_type: str = JSON,
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = {media_type: {"schema": schema}}
    if headers:
        answer["headers"] = headers
    return answer


def _guards(path: str, method: str, *, auth: bool) -> dict[str, dict[str, Any]]:
    """What the guards and the shutdown path can answer before (or instead of) the route."""
    found: dict[str, dict[str, Any]] = {}
    if path not in OPEN_PATHS:
        if auth:
            found["401"] = _answer(
                "Missing or invalid bearer token",
                _ref("GuardError"),
                headers={"WWW-Authenticate": _header("The bearer challenge", {"type": "string"})},
            )
        found["403"] = _answer(
            "The Origin header names an origin that is not allowed (MCP_ALLOWED_ORIGINS)", _ref("GuardError")
        )
    if method == "post":
        found["413"] = _answer("The body exceeds MCP_MAX_BODY_BYTES", _ref("GuardError"))
    found["503"] = _answer(
        "The service is shutting down and cut this request off; retry (another replica)",
        _ref("GuardError"),
        headers={"Retry-After": RETRY_AFTER},
    )
    return found


_RATE_LIMITED = _answer(
    "A tools/call over the per-client rate limit (MCP_RATE_LIMIT_PER_MINUTE): a JSON-RPC error whose "
    "data.retryAfter repeats the Retry-After header",
    _ref("JsonRpcErrorResponse"),
    headers={"Retry-After": RETRY_AFTER},
)


def _mcp_post() -> dict[str, dict[str, Any]]:
    found = {
        "200": _answer(
            "The JSON-RPC response, or an array of them for a batch (revisions before 2025-06-18). Tool "
            "failures are results with isError; other errors are JSON-RPC errors",
            _ref("JsonRpcReply"),
        ),
        "202": _answer("Only notifications or client responses were posted: nothing to answer"),
        "400": _answer(
            "A JSON-RPC error: malformed JSON or JSON-RPC, a batch under a revision without batches, or "
            "(2026-07-28) a missing or mismatched envelope, header or protocol version",
            _ref("JsonRpcErrorResponse"),
        ),
        "429": _RATE_LIMITED,
    }
    # 2026-07-28 maps some JSON-RPC error codes to HTTP statuses (protocol.MODERN_ERROR_HTTP_STATUS).
    for code, status in sorted(MODERN_ERROR_HTTP_STATUS.items()):
        found.setdefault(
            str(status),
            _answer(f"2026-07-28: a JSON-RPC error with code {code}", _ref("JsonRpcErrorResponse")),
        )
    return found


def _mcp_not_allowed() -> dict[str, dict[str, Any]]:
    return {
        "405": _answer(
            "Stateless service: no standalone GET stream and no session to delete; use POST",
            headers={"Allow": _header("The methods /mcp supports", {"type": "string", "enum": ["POST"]})},
        )
    }


def _rpc_post() -> dict[str, dict[str, Any]]:
    return {
        "200": _answer("The JSON-RPC response, or an array of them for a batch", _ref("JsonRpcReply")),
        "204": _answer("Only notifications or client responses were posted: nothing to answer"),
        "400": _answer("Malformed JSON or an empty batch: a JSON-RPC error", _ref("JsonRpcErrorResponse")),
        "429": _RATE_LIMITED,
    }


def _sse_get() -> dict[str, dict[str, Any]]:
    return {
        "200": _answer(
            "The event stream: first an endpoint event with the URL to POST messages to, then message "
            "events with the replies and comment lines as keep-alives",
            {"type": "string"},
            media_type="text/event-stream",
        )
    }


def _messages_post() -> dict[str, dict[str, Any]]:
    return {
        "202": _answer(
            "Accepted: the reply comes on the session's event stream",
            {"type": "string", "enum": ["Accepted"]},
            media_type="text/plain",
        ),
        "400": _answer(
            "No session_id query parameter, or malformed JSON-RPC (a JSON-RPC error)",
            {"oneOf": [_ref("GuardError"), _ref("JsonRpcErrorResponse")]},
        ),
        "404": _answer("No open session has this session_id", _ref("GuardError")),
        "429": _RATE_LIMITED,
    }


def _health_get() -> dict[str, dict[str, Any]]:
    return {
        "200": _answer("Every configured backend is up (or not configured)", _ref("Health")),
        "503": _answer(
            "A configured backend is down (status degraded), or the service is shutting down",
            {"oneOf": [_ref("Health"), _ref("GuardError")]},
            headers={"Retry-After": {**RETRY_AFTER, "required": False}},
        ),
    }


def _metrics_get() -> dict[str, dict[str, Any]]:
    return {
        "200": _answer(
            "Prometheus metrics in the text exposition format",
            {"type": "string"},
            media_type=METRICS_CONTENT_TYPE.split(";")[0].strip(),
        )
    }


def _discovery_get() -> dict[str, dict[str, Any]]:
    return {"200": _answer("The service, its transports and its tools", _ref("Discovery"))}


# What each route answers itself; the guards' answers are added to every one of them.
# Every answer of each endpoint of libmcp/endpoints.py, by its name (a test holds the two to each other).
ENDPOINT_ANSWERS: dict[str, Callable[[], dict[str, dict[str, Any]]]] = {
    "mcp_post": _mcp_post,
    "mcp_get": _mcp_not_allowed,
    "mcp_delete": _mcp_not_allowed,
    "rpc_post": _rpc_post,
    "sse_get": _sse_get,
    "messages_post": _messages_post,
    "health": _health_get,
    "metrics": _metrics_get,
    "discovery": _discovery_get,
}


def answers(method: str, path: str, *, auth: bool) -> dict[str, dict[str, Any]]:
    """Every answer of one operation (``method`` in lower case), by status code as a string."""
    # A route's own answer replaces a guard's with the same status (/health's 503 names both causes).
    known = endpoint(method, path)
    if known is None:
        raise KeyError(f"{method.upper()} {path} is not in libmcp's endpoint table")
    merged = {**_guards(path, method, auth=auth), **ENDPOINT_ANSWERS[known.name]()}
    return copy.deepcopy(dict(sorted(merged.items())))  # no answer shares objects with another


def document(schema: dict[str, Any], *, auth: bool) -> dict[str, Any]:
    """``schema`` (FastAPI's generated description) completed with every answer of every known operation.

    Operations this module does not know are left as they are. ``auth``: bearer tokens are configured
    (``MCP_AUTH_TOKENS``), which adds the 401 answers and the bearer security scheme. ``schema`` itself
    is not changed, and ``document(document(s, auth=a), auth=b) == document(s, auth=b)``.
    """
    completed = copy.deepcopy(schema)
    components = completed.setdefault("components", {})
    components.setdefault("schemas", {}).update(copy.deepcopy(COMPONENT_SCHEMAS))
    schemes = components.setdefault("securitySchemes", {})
    schemes.pop(SECURITY_SCHEME, None)
    if auth:
        schemes[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "One of the tokens in MCP_AUTH_TOKENS",
        }
    if not schemes:
        del components["securitySchemes"]
    for path, operations in completed.get("paths", {}).items():
        for method, operation in operations.items():
            known = endpoint(method, path)
            if known is None:
                continue
            operation["responses"] = answers(method, path, auth=auth)
            if known.mcp:
                operation["requestBody"] = copy.deepcopy(JSONRPC_REQUEST_BODY)
            operation.pop("security", None)
            if auth:
                operation["security"] = [] if path in OPEN_PATHS else [{SECURITY_SCHEME: []}]
    return completed
