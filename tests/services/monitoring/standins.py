"""Local stand-ins for the backends that cannot run here: Loki, the Kubernetes API and the Docker Engine.

Each answers the endpoints the monitoring service uses in the shapes their documentation gives, and
records every request it receives so tests can assert what was asked (paths, escaping, parameters).
They hold no logic of the service under test; their data is set by each test.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Received:
    """One request as the stand-in saw it: the raw (still escaped) path and the decoded query."""

    method: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return unquote(self.raw_path)


def _received(request: Request) -> Received:
    return Received(
        method=request.method,
        raw_path=request.scope["raw_path"].decode("ascii"),
        query=dict(request.query_params),
        headers={key.lower(): value for key, value in request.headers.items()},
    )


def _closing(app: Starlette) -> Any:
    """Answer with ``Connection: close``: the service's pooled keep-alive connections would otherwise hold
    the stand-in's shutdown until they time out."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        async def send_closing(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await app(scope, receive, send_closing if scope["type"] == "http" else send)

    return asgi


def rfc3339_nano(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


# Kubernetes -------------------------------------------------------------------------------------


@dataclass
class Pod:
    """A pod's containers and the lines each wrote: (time, text)."""

    containers: dict[str, list[tuple[datetime, str]]]


@dataclass
class KubeApiStandIn:
    """kube-apiserver's ``GET /api/v1/namespaces/{ns}/pods/{name}/log`` and ``GET /version``.

    Checks the bearer token (401 Status otherwise), applies an RBAC rule (pod logs readable only in
    ``readable_namespaces``, else 403 Status), 404 Status for unknown pods, 400 Status when a pod has
    several containers and none is named; honours ``tailLines``, ``sinceSeconds`` and ``timestamps``.
    """

    token: str
    readable_namespaces: set[str]
    pods: dict[tuple[str, str], Pod] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)

    def app(self) -> Any:
        return _closing(
            Starlette(
                routes=[
                    Route("/version", self._version),
                    Route("/api/v1/namespaces/{namespace}/pods/{name}/log", self._pod_log),
                ]
            )
        )

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token == self.token

    async def _version(self, request: Request) -> Response:
        self.requests.append(_received(request))
        if not self._authorized(request):
            return _status(401, "Unauthorized", "Unauthorized")
        return JSONResponse(
            {
                "major": "1",
                "minor": "30",
                "gitVersion": "v1.30.0",
                "gitCommit": "7c48c2bd72b9bf5c44d21d7338cc7bea77d0ad2a",
                "gitTreeState": "clean",
                "buildDate": "2024-04-17T17:27:03Z",
                "goVersion": "go1.22.2",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    async def _pod_log(self, request: Request) -> Response:
        self.requests.append(_received(request))
        if not self._authorized(request):
            return _status(401, "Unauthorized", "Unauthorized")
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        if namespace not in self.readable_namespaces:
            return _status(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: User "system:serviceaccount:mcp:mcp-monitoring" cannot get '
                f'resource "pods/log" in API group "" in the namespace "{namespace}"',
            )
        pod = self.pods.get((namespace, name))
        if pod is None:
            return _status(404, "NotFound", f'pods "{name}" not found')
        container = request.query_params.get("container")
        if container is None:
            if len(pod.containers) > 1:
                names = " ".join(pod.containers)
                message = f"a container name must be specified for pod {name}, choose one of: [{names}]"
                return _status(400, "BadRequest", message)
            container = next(iter(pod.containers))
        if container not in pod.containers:
            return _status(400, "BadRequest", f"container {container} is not valid for pod {name}")
        lines = pod.containers[container]
        if "sinceSeconds" in request.query_params:
            cutoff = datetime.now(UTC) - timedelta(seconds=int(request.query_params["sinceSeconds"]))
            lines = [line for line in lines if line[0] >= cutoff]
        if "tailLines" in request.query_params:
            tail = int(request.query_params["tailLines"])
            lines = lines[-tail:] if tail else []
        stamped = request.query_params.get("timestamps") == "true"
        body = "".join(f"{rfc3339_nano(when)} {text}\n" if stamped else f"{text}\n" for when, text in lines)
        return PlainTextResponse(body)


def _status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        status_code=code,
    )


# Docker -----------------------------------------------------------------------------------------


@dataclass
class Container:
    """A container: whether it has a TTY and the lines it wrote: (time, stream, text)."""

    tty: bool
    lines: list[tuple[datetime, str, str]]


@dataclass
class DockerStandIn:
    """The Docker Engine API's ``/version``, ``/containers/{id}/json`` and ``/containers/{id}/logs``.

    Logs come multiplexed (8-byte frame headers, stream 1 stdout / 2 stderr) unless the container has a
    TTY; ``tail``, ``since`` and ``timestamps`` are honoured. The stream is written a few bytes at a
    time so frames arrive split across reads. Unknown containers get 404 ``{"message": ...}``.
    """

    containers: dict[str, Container] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    write_size: int = 7

    def app(self) -> Any:
        return _closing(
            Starlette(
                routes=[
                    Route("/version", self._version),
                    Route("/containers/{name}/json", self._inspect),
                    Route("/containers/{name}/logs", self._logs),
                ]
            )
        )

    async def _version(self, request: Request) -> Response:
        self.requests.append(_received(request))
        return JSONResponse({"Version": "27.3.1", "ApiVersion": "1.47", "Os": "linux"})

    def _find(self, request: Request) -> tuple[str, Container | None]:
        name = request.path_params["name"]
        return name, self.containers.get(name)

    async def _inspect(self, request: Request) -> Response:
        self.requests.append(_received(request))
        name, container = self._find(request)
        if container is None:
            return JSONResponse({"message": f"No such container: {name}"}, status_code=404)
        return JSONResponse({"Name": f"/{name}", "Config": {"Tty": container.tty}})

    async def _logs(self, request: Request) -> Response:
        self.requests.append(_received(request))
        name, container = self._find(request)
        if container is None:
            return JSONResponse({"message": f"No such container: {name}"}, status_code=404)
        params = request.query_params
        lines = [line for line in container.lines if params.get(line[1]) == "1"]
        if "since" in params:
            lines = [line for line in lines if line[0].timestamp() >= int(params["since"])]
        if params.get("tail", "all") != "all":
            lines = lines[-int(params["tail"]) :] if int(params["tail"]) else []
        stamped = params.get("timestamps") == "1"
        body = bytearray()
        for when, stream, text in lines:
            payload = (f"{rfc3339_nano(when)} " if stamped else "").encode() + text.encode() + b"\n"
            if not container.tty:
                body += struct.pack(">BxxxL", 1 if stream == "stdout" else 2, len(payload))
            body += payload
        size = self.write_size

        async def chunks() -> Any:
            for start in range(0, len(body), size):
                yield bytes(body[start : start + size])

        kind = "raw" if container.tty else "multiplexed"
        media_type = f"application/vnd.docker.{kind}-stream"
        return StreamingResponse(chunks(), media_type=media_type)


# Loki -------------------------------------------------------------------------------------------


@dataclass
class LokiStandIn:
    """Loki's ``GET /ready`` and ``GET /loki/api/v1/query_range``.

    Answers ``resultType: streams`` JSON (values as ``[nanosecond string, line]``, ordered by the
    requested direction, at most ``limit`` entries overall, newest first for ``backward``); a query that
    does not start with a stream selector gets 400 with Loki's parse-error text; a query using a range
    aggregation gets ``resultType: matrix``. Entries outside ``start``..``end`` are left out.
    """

    streams: list[tuple[dict[str, str], list[tuple[int, str]]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    def app(self) -> Any:
        return _closing(
            Starlette(
                routes=[Route("/ready", self._ready), Route("/loki/api/v1/query_range", self._query_range)]
            )
        )

    async def _ready(self, request: Request) -> Response:
        self.requests.append(_received(request))
        return PlainTextResponse("ready\n")

    async def _query_range(self, request: Request) -> Response:
        self.requests.append(_received(request))
        params = request.query_params
        query = params["query"].strip()
        if not query.startswith(("{", "rate(", "count_over_time(", "sum")):
            token = query.split()[0] if query.split() else query
            return PlainTextResponse(
                f"parse error at line 1, col 1: syntax error: unexpected IDENTIFIER, expecting {{ ({token})",
                status_code=400,
            )
        if not query.startswith("{"):
            return JSONResponse({"status": "success", "data": {"resultType": "matrix", "result": []}})
        start, end, limit = int(params["start"]), int(params["end"]), int(params.get("limit", "100"))
        backward = params.get("direction", "backward") == "backward"
        entries = [
            (nanos, index, line)
            for index, (_, values) in enumerate(self.streams)
            for nanos, line in values
            if start <= nanos <= end
        ]
        entries.sort(reverse=backward)
        entries = entries[:limit]
        result = []
        for index, (labels, _) in enumerate(self.streams):
            values = [[str(nanos), line] for nanos, i, line in entries if i == index]
            if values:
                result.append({"stream": labels, "values": values})
        stats = {"summary": {"totalEntriesReturned": len(entries)}}
        data = {"resultType": "streams", "result": result, "stats": stats}
        return Response(json.dumps({"status": "success", "data": data}), media_type="application/json")
