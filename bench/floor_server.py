"""The floor: a bare ASGI app that answers the same JSON-RPC tools/call with no validation at all.

Same server (uvicorn with httptools and uvloop, one process) and the same JSON library as the
services, so the gap between it and a service is what validation, routing, metrics, logging and the
guards cost. It runs on stock uvicorn, the way anyone would serve such an app: the write coalescing
of libmcp's HTTP protocol (libmcp/http_protocol.py) is part of what libmcp brings.
``python -m bench.floor_server PORT``.
"""

from __future__ import annotations

import sys

import orjson
import uvicorn

_RESULT = {
    "content": [{"type": "text", "text": '{\n  "ok": true\n}'}],
    "structuredContent": {"ok": True},
    "isError": False,
}


async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/health":
        payload = b'{"status":"ok"}'
    else:
        request = orjson.loads(body)
        payload = orjson.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": _RESULT})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
