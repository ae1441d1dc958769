"""Pieces every transport shares: call metadata, the checks on a POST's messages, and batch answering."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from libmcp import protocol
from libmcp.calls import CallInfo
from libmcp.http import HttpReply, HttpRequest, json_reply
from libmcp.protocol import Revision, RpcError
from libmcp.security import RateLimiter
from libmcp.server import Server

logger = logging.getLogger("libmcp.security")


def call_info(
    request: HttpRequest, transport: str, revision: Revision, version: str, session_id: str | None = None
) -> CallInfo:
    return CallInfo(
        transport=transport,
        revision=revision,
        protocol_version=version,
        client_id=request.client_id,
        traceparent=request.header(b"traceparent"),
        session_id=session_id,
    )


@dataclass(slots=True)
class Admitted:
    """A POST body that passed :meth:`Intake.admit`: its decoded JSON."""

    body: Any


class Intake:
    """The checks on every MCP POST before its transport sees it, in one place (the app's pipeline).

    A batch over ``MCP_MAX_BATCH_MESSAGES`` is refused whole (413). Every message counts toward the
    caller's rate limit, each batch entry and each notification included (a notification costs a
    parse and a dispatch like any request), keyed by ``client_id``: the token's id, else the peer
    address. A body that is not JSON counts as one message too, so a flood of garbage is limited alike.
    """

    def __init__(self, server: Server, limiter: RateLimiter) -> None:
        self.server = server
        self.limiter = limiter
        self.max_batch = server.server_settings.max_batch_messages

    def admit(self, request: HttpRequest) -> Admitted | HttpReply:
        """The decoded body, or the reply refusing it (400 not JSON, 413 batch too large, 429)."""
        failure: RpcError | None = None
        try:
            body = protocol.parse_json(request.body)
        except RpcError as error:
            body, failure = None, error
        count = len(body) if isinstance(body, list) else 1
        if count > self.max_batch:
            return self._refuse(
                "batch_size",
                request,
                None,
                f"Invalid request: a batch of {count} messages is over the limit of {self.max_batch} "
                "(MCP_MAX_BATCH_MESSAGES); send fewer messages per batch",
                413,
                {"limit": self.max_batch, "size": count, "setting": "MCP_MAX_BATCH_MESSAGES"},
            )
        if self.limiter.bucket is not None:
            refusal = self._rate_limit(request, body, max(count, 1))
            if refusal is not None:
                return refusal
        if failure is not None:
            self.server.metrics.http_rejections.labels("protocol").inc()
            return json_reply(protocol.error_response(None, failure), 400)
        return Admitted(body)

    def _rate_limit(self, request: HttpRequest, body: Any, count: int) -> HttpReply | None:
        limiter = self.limiter
        settings = f"MCP_RATE_LIMIT_PER_MINUTE={limiter.per_minute}, MCP_RATE_LIMIT_BURST={limiter.burst}"
        request_id = None if isinstance(body, list) else protocol.request_id_of(body)
        if count > limiter.burst:
            wait = 60
            message = (
                f"Rate limit exceeded: a batch of {count} messages is more than the burst of "
                f"{limiter.burst} this client may send at once ({settings}); send smaller batches"
            )
        else:
            wait = limiter.retry_after(request.client_id, count)
            if not wait:
                return None
            message = f"Rate limit exceeded: retry after {wait} s ({settings})"
        return self._refuse(
            "rate_limit",
            request,
            request_id,
            message,
            429,
            {"retryAfter": wait, "setting": "MCP_RATE_LIMIT_PER_MINUTE"},
            {"Retry-After": str(wait)},
        )

    def _refuse(
        self,
        reason: str,
        request: HttpRequest,
        request_id: Any,
        message: str,
        status: int,
        data: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> HttpReply:
        self.server.metrics.http_rejections.labels(reason).inc()
        logger.warning(
            "request refused",
            extra={"fields": {"event": "rejected", "reason": reason, "client": request.client_id[:256]}},
        )
        error = RpcError(protocol.INVALID_REQUEST, message, data)
        return json_reply(protocol.error_response(request_id, error), status, headers)


async def answer_batch(server: Server, entries: list[Any], info: CallInfo) -> bytes | None:
    """The encoded answers to a batch (``None`` when none is due), within ``MCP_MAX_REPLY_BYTES``.

    Each request may use what the answers before it left of the budget, less the room kept for a
    short refusal to each request after it. An answer over that is replaced by one saying so, and
    the budget is then spent: the remaining requests do not run and each gets an error naming the
    limit. The answers of the requests that ran before stay in the reply. Malformed entries get
    their own error responses.
    """
    budget = server.server_settings.max_reply_bytes
    refusals = [_refusals(entry, budget) for entry in entries]
    reserved = sum(len(max(pair, key=len)) for pair in refusals if pair is not None)
    answers: list[bytes] = []
    used = 0
    spent = False
    for entry, pair in zip(entries, refusals, strict=True):
        try:
            message = protocol.to_message(entry)
        except RpcError as error:
            body = protocol.dumps(protocol.error_response(protocol.request_id_of(entry), error))
        else:
            if pair is None:  # a notification or a client response: nothing to run or answer
                continue
            not_run, too_large = pair
            reserved -= len(max(pair, key=len))
            left = budget - used - reserved
            if spent or left < len(max(pair, key=len)):
                server.metrics.count_request(message.method or "", info.transport, "error")
                body = not_run
            else:
                answer = await server.answer(message, info, left)
                assert answer is not None
                body = answer.body if len(answer.body) <= left else too_large
                # An answer replaced for its size spends the budget: what follows would only run to
                # be replaced too.
                spent = answer.too_large or body is too_large
        answers.append(body)
        used += len(body)
    if not answers:
        return None
    return b"[" + b",".join(answers) + b"]"


def _refusals(entry: Any, budget: int) -> tuple[bytes, bytes] | None:
    """A request's two short answers for a spent budget: not run, and ran but too large to send.
    ``None`` for an entry that gets no answer or only its own error."""
    if not isinstance(entry, dict) or "method" not in entry or "id" not in entry:
        return None
    request_id = protocol.request_id_of(entry)
    data = {"limit": budget, "setting": "MCP_MAX_REPLY_BYTES"}
    not_run = RpcError(
        protocol.INTERNAL_ERROR,
        f"Reply budget spent: the answers before this one used the {budget} bytes a batch may take "
        "(MCP_MAX_REPLY_BYTES); this request was not run: send it again alone or in a smaller batch",
        data,
    )
    too_large = RpcError(
        protocol.INTERNAL_ERROR,
        f"Reply too large: this request ran, but its answer did not fit in what was left of the {budget} "
        "bytes a batch may take (MCP_MAX_REPLY_BYTES); ask for less or send it alone",
        data,
    )
    return (
        protocol.dumps(protocol.error_response(request_id, not_run)),
        protocol.dumps(protocol.error_response(request_id, too_large)),
    )
