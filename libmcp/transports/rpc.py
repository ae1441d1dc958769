"""``POST /rpc``: plain JSON-RPC 2.0 for scripts and curl. No handshake, batches allowed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from libmcp import protocol
from libmcp.protocol import RpcError
from libmcp.security import RateLimiter
from libmcp.server import Server
from libmcp.transports._http import answer_all, call_info, decode_batch, json_response, rate_limit


class RpcTransport:
    def __init__(self, server: Server, limiter: RateLimiter) -> None:
        self.server = server
        self.limiter = limiter

    async def handle_post(self, request: Request) -> Response:
        try:
            body = protocol.parse_json(await request.body())
        except RpcError as error:
            return json_response(protocol.error_response(None, error), 400)
        batch = body if isinstance(body, list) else [body]
        if not batch:
            refusal = RpcError(protocol.INVALID_REQUEST, "Invalid request: empty batch")
            return json_response(protocol.error_response(None, refusal), 400)
        info = call_info(request, "rpc", "rpc", protocol.LATEST_HANDSHAKE_VERSION)
        limited = rate_limit(self.server, self.limiter, decode_batch(batch), info.client_id)
        if limited is not None:
            return limited
        responses = await answer_all(self.server, batch, info)
        if not responses:
            return Response(status_code=204)
        return json_response(responses if isinstance(body, list) else responses[0])
