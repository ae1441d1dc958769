"""``POST /rpc``: plain JSON-RPC 2.0 for scripts and curl. No handshake, batches allowed."""

from __future__ import annotations

from typing import Any

from libmcp import protocol
from libmcp.http import HttpReply, HttpRequest, json_reply
from libmcp.protocol import RpcError
from libmcp.server import Server
from libmcp.transports._http import answer_batch, call_info

NO_CONTENT = HttpReply(204, b"", None)


class RpcTransport:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def handle_post(self, request: HttpRequest, body: Any) -> HttpReply:
        """Answer a decoded body that passed the app's intake."""
        info = call_info(request, "rpc", protocol.RPC, protocol.LATEST_HANDSHAKE_VERSION)
        if not isinstance(body, list):
            try:
                message = protocol.to_message(body)
            except RpcError as error:
                return json_reply(protocol.error_response(protocol.request_id_of(body), error))
            answer = await self.server.answer(message, info)
            return NO_CONTENT if answer is None else HttpReply(200, answer.body)
        if not body:
            refusal = RpcError(protocol.INVALID_REQUEST, "Invalid request: empty batch")
            return json_reply(protocol.error_response(None, refusal), 400)
        answers = await answer_batch(self.server, body, info)
        return NO_CONTENT if answers is None else HttpReply(200, answers)
