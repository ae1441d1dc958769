"""``POST /mcp``: Streamable HTTP for both protocol eras on one endpoint, stateless.

Era routing follows the ``MCP-Protocol-Version`` header and the body:

* a 2026-07-28 header, an unknown header value, or no header with the per-request ``_meta``
  envelope in the body: the stateless revision. The envelope is checked rung by rung (envelope
  present, headers equal to the body, version supported) and errors carry the spec's HTTP status.
* otherwise the handshake era (2024-11-05 .. 2025-11-25): ``initialize`` is answered as a pure
  function, no ``Mcp-Session-Id`` is issued, and any replica can answer any request.

Replies are always ``application/json``; notifications and client responses get 202 with no body.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from libmcp import protocol
from libmcp.http import ACCEPTED, HttpReply, HttpRequest, json_reply
from libmcp.protocol import RpcError
from libmcp.server import Server
from libmcp.transports._http import answer_batch, call_info

# Routing headers whose duplicates are refused: a first-copy and a last-copy reader would disagree.
ROUTING_HEADERS = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
NAME_BEARING_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


class StreamableHttpTransport:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def handle_post(self, request: HttpRequest, body: Any) -> HttpReply:
        """Answer a decoded body that passed the app's intake, in the revision it speaks."""
        version_header = request.header(b"mcp-protocol-version")
        if isinstance(body, list):
            return await self._batch(request, body, version_header)
        if not isinstance(body, dict):
            return self._error(
                None, RpcError(protocol.INVALID_REQUEST, "Invalid request: expected an object"), 400
            )
        revision = protocol.route_streamable_http(version_header, body)
        if isinstance(revision, RpcError):
            return self._error(protocol.request_id_of(body), revision, 400)
        if revision is protocol.MODERN:
            return await self._modern(request, body, version_header)
        return await self._handshake_era(request, body, version_header or protocol.DEFAULT_HTTP_VERSION)

    # Handshake era ----------------------------------------------------------------------------

    async def _handshake_era(self, request: HttpRequest, body: dict[str, Any], version: str) -> HttpReply:
        try:
            message = protocol.to_message(body)
        except RpcError as error:
            return self._error(protocol.request_id_of(body), error, 400)
        if not message.is_request:
            return ACCEPTED
        answer = await self.server.answer(message, call_info(request, "mcp", protocol.HANDSHAKE, version))
        assert answer is not None
        return HttpReply(200, answer.body)

    async def _batch(self, request: HttpRequest, batch: list[Any], version_header: str | None) -> HttpReply:
        version = version_header or protocol.DEFAULT_HTTP_VERSION
        if not protocol.HANDSHAKE.allows_batches(version):
            refusal = RpcError(
                protocol.INVALID_REQUEST, f"Invalid request: protocol revision {version} has no batches"
            )
            return self._error(None, refusal, 400)
        if not batch:
            return self._error(None, RpcError(protocol.INVALID_REQUEST, "Invalid request: empty batch"), 400)
        info = call_info(request, "mcp", protocol.HANDSHAKE, version)
        answers = await answer_batch(self.server, batch, info)
        return ACCEPTED if answers is None else HttpReply(200, answers)

    # 2026-07-28 -------------------------------------------------------------------------------

    async def _modern(
        self, request: HttpRequest, body: dict[str, Any], version_header: str | None
    ) -> HttpReply:
        request_id = protocol.request_id_of(body)
        if "id" not in body:
            if version_header not in protocol.MODERN_VERSIONS:
                return self._modern_error(request_id, protocol.unsupported_version_error(version_header))
            try:
                protocol.to_message(body)
            except RpcError as error:
                return self._modern_error(request_id, error)
            return ACCEPTED
        try:
            message = protocol.to_message(body)
            if message.is_response:
                raise RpcError(
                    protocol.INVALID_REQUEST, "Invalid request: expected a request, not a response"
                )
            version = self._check_envelope(request, message.method or "", message.params)
        except RpcError as error:
            return self._modern_error(request_id, error)
        answer = await self.server.answer(message, call_info(request, "mcp", protocol.MODERN, version))
        assert answer is not None
        return HttpReply(protocol.MODERN.http_status(answer.error_code), answer.body)

    def _check_envelope(self, request: HttpRequest, method: str, params: dict[str, Any]) -> str:
        """The envelope ladder of 2026-07-28; returns the request's protocol version."""
        meta = params.get("_meta")
        required = (protocol.PROTOCOL_VERSION_META_KEY, protocol.CLIENT_CAPABILITIES_META_KEY)
        if not isinstance(meta, dict):
            raise RpcError(
                protocol.INVALID_PARAMS,
                f"Invalid params: params._meta must be an object carrying {required[0]!r} "
                f"and {required[1]!r}",
            )
        missing = [key for key in required if key not in meta]
        if missing:
            raise RpcError(
                protocol.INVALID_PARAMS, f"Invalid params: params._meta is missing {', '.join(missing)}"
            )
        for name in ROUTING_HEADERS:
            if request.header_count(name) > 1:
                raise RpcError(protocol.HEADER_MISMATCH, f"{name.decode()} header appears more than once")
        body_version = meta[protocol.PROTOCOL_VERSION_META_KEY]
        if request.header(b"mcp-protocol-version") != body_version:
            raise RpcError(
                protocol.HEADER_MISMATCH,
                "MCP-Protocol-Version header does not match the request envelope's protocol version",
            )
        if request.header(b"mcp-method") != method:
            raise RpcError(
                protocol.HEADER_MISMATCH, "Mcp-Method header does not match the request body's method"
            )
        name_key = NAME_BEARING_METHODS.get(method)
        if name_key is not None and params.get(name_key) is not None:
            if _decode_header_value(request.header(b"mcp-name")) != params.get(name_key):
                raise RpcError(
                    protocol.HEADER_MISMATCH,
                    f"Mcp-Name header does not match the request body's {name_key!r}",
                )
        if not isinstance(body_version, str):
            raise RpcError(protocol.INVALID_PARAMS, "Invalid params: the protocol version must be a string")
        if body_version not in protocol.MODERN_VERSIONS:
            raise protocol.unsupported_version_error(body_version)
        return body_version

    # Errors -----------------------------------------------------------------------------------

    def _modern_error(self, request_id: Any, error: RpcError) -> HttpReply:
        self.server.metrics.http_rejections.labels("protocol").inc()
        status = protocol.MODERN.http_status(error.code)
        return json_reply(protocol.error_response(request_id, error), status)

    def _error(self, request_id: Any, error: RpcError, status: int) -> HttpReply:
        self.server.metrics.http_rejections.labels("protocol").inc()
        return json_reply(protocol.error_response(request_id, error), status)


def _decode_header_value(value: str | None) -> str | None:
    """Undo the ``=?base64?…?=`` wrapping clients use for header values that are not plain ASCII."""
    if value is None or not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    try:
        return base64.b64decode(value[len("=?base64?") : -2], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
