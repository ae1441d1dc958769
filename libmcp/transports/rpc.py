"""``POST /rpc``: plain JSON-RPC 2.0 for scripts and curl. No handshake, batches allowed."""

from __future__ import annotations

from libmcp import protocol
from libmcp.http import HttpReply, HttpRequest, json_reply
from libmcp.protocol import RpcError
from libmcp.security import RateLimiter
from libmcp.server import Server
from libmcp.transports._http import answer_all, call_info, decode_batch, rate_limit

NO_CONTENT = HttpReply(204, b"", None)


class RpcTransport:
    def __init__(self, server: Server, limiter: RateLimiter) -> None:
        self.server = server
        self.limiter = limiter

    async def handle_post(self, request: HttpRequest) -> HttpReply:
        try:
            body = protocol.parse_json(request.body)
        except RpcError as error:
            return json_reply(protocol.error_response(None, error), 400)
        info = call_info(request, "rpc", "rpc", protocol.LATEST_HANDSHAKE_VERSION)
        if not isinstance(body, list):
            try:
                message = protocol.to_message(body)
            except RpcError as error:
                return json_reply(protocol.error_response(protocol.request_id_of(body), error))
            limited = rate_limit(self.server, self.limiter, [message], info.client_id)
            if limited is not None:
                return limited
            response = await self.server.handle(message, info)
            return NO_CONTENT if response is None else json_reply(response)
        if not body:
            refusal = RpcError(protocol.INVALID_REQUEST, "Invalid request: empty batch")
            return json_reply(protocol.error_response(None, refusal), 400)
        limited = rate_limit(self.server, self.limiter, decode_batch(body), info.client_id)
        if limited is not None:
            return limited
        responses = await answer_all(self.server, body, info)
        return json_reply(responses) if responses else NO_CONTENT
