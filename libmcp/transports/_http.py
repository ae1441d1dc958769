"""Pieces every transport shares: call metadata, the tool-call rate limit and batch answering."""

from __future__ import annotations

import logging
from typing import Any

from libmcp import protocol
from libmcp.http import HttpReply, HttpRequest, json_reply
from libmcp.protocol import Message
from libmcp.security import RateLimiter
from libmcp.server import CallInfo, Era, Server

logger = logging.getLogger("libmcp.security")


def call_info(
    request: HttpRequest, transport: str, era: Era, version: str, session_id: str | None = None
) -> CallInfo:
    return CallInfo(
        transport=transport,
        era=era,
        protocol_version=version,
        client_id=request.client_id,
        traceparent=request.header(b"traceparent"),
        session_id=session_id,
    )


def rate_limit(
    server: Server, limiter: RateLimiter, messages: list[Message], client_id: str
) -> HttpReply | None:
    """A 429 reply when the batch holds a tool call the client has no budget for, else ``None``."""
    if limiter.bucket is None:
        return None
    for message in messages:
        if message.method == "tools/call" and message.is_request:
            wait = limiter.retry_after(client_id)
            if wait:
                server.metrics.http_rejections.labels("rate_limit").inc()
                logger.warning(
                    "request refused",
                    extra={"fields": {"event": "rejected", "reason": "rate_limit", "client": client_id}},
                )
                error = protocol.RpcError(
                    protocol.INVALID_REQUEST,
                    f"Rate limit exceeded: retry after {wait} s",
                    {"retryAfter": wait},
                )
                return json_reply(
                    protocol.error_response(message.id, error), status=429, headers={"Retry-After": str(wait)}
                )
    return None


async def answer_all(server: Server, messages: list[Any], info: CallInfo) -> list[dict[str, Any]]:
    """Answer the entries of a JSON-RPC batch; malformed entries get their own error responses."""
    responses = []
    for raw in messages:
        try:
            message = protocol.to_message(raw)
        except protocol.RpcError as error:
            responses.append(protocol.error_response(protocol.request_id_of(raw), error))
            continue
        response = await server.handle(message, info)
        if response is not None:
            responses.append(response)
    return responses


def decode_batch(raw: list[Any]) -> list[Message]:
    """The well-formed entries of a batch (for rate limiting before anything runs)."""
    messages = []
    for entry in raw:
        try:
            messages.append(protocol.to_message(entry))
        except protocol.RpcError:
            continue
    return messages
