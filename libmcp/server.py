"""The server that dispatches MCP methods to a service (declared in :mod:`libmcp.service`).

:class:`Server` binds a service to its loaded settings, runs its lifespan, and answers decoded JSON-RPC
messages; transports only move bytes to and from it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from libmcp import protocol
from libmcp.calls import CallInfo
from libmcp.config import ServerSettings, ServiceSettings
from libmcp.fairness import FairShare, ShareTimeout, share_of
from libmcp.observability import Metrics, ToolCallRecord, logged_argument_names, tool_span, tracing_enabled
from libmcp.protocol import Message, RpcError
from libmcp.service import CheckContext, CheckResult, Service, StartupContext
from libmcp.tools import (
    Tool,
    ToolContext,
    ToolError,
    call_result,
    describe_validation_error,
)

logger = logging.getLogger("libmcp.server")

# Request-derived text echoed in an error message is cut to this many characters.
_ECHO_CHARS = 100
# A W3C traceparent is 55 characters; anything much longer is not one and is not parsed.
_MAX_TRACEPARENT_CHARS = 128
# What a result may raise while it is turned into JSON: pydantic's and orjson's depth limits
# (ValueError, orjson.JSONEncodeError, a TypeError), a type neither knows, Python's own recursion limit.
_ENCODING_ERRORS = (ValueError, TypeError, RecursionError)


@dataclass(slots=True)
class Answer:
    """One encoded JSON-RPC response, and its error code if it is an error (for the HTTP status)."""

    body: bytes
    error_code: int | None = None
    # The real answer was over its byte budget and this one says so instead.
    too_large: bool = False


class Server:
    """A :class:`Service` bound to its settings: the one place MCP methods are answered."""

    def __init__(
        self,
        service: Service[Any, Any],
        settings: ServiceSettings | None = None,
        server_settings: ServerSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.service = service
        self.settings = settings if settings is not None else service.settings_class.model_validate({})
        self.server_settings = server_settings or ServerSettings.model_validate({})
        self.metrics = metrics or Metrics(service.name)
        # What the service's lifespan yielded: set by start().
        self.state: Any = None
        self._lifespan_exit: contextlib.AsyncExitStack | None = None
        self.started_at = time.monotonic()
        self._last_checks: tuple[bool, dict[str, Any]] | None = None
        self._checks_fresh_until = 0.0
        self._checks_running: asyncio.Task[tuple[bool, dict[str, Any]]] | None = None
        # Backends of the library itself (the session bus): reported and counted, but one that is
        # down leaves the replica ready, since what it serves locally still works.
        self.optional_checks: dict[str, Callable[[], Awaitable[CheckResult]]] = {}
        self.tools = {
            name: tool
            for name, tool in service.tools.items()
            if tool.enabled is None or tool.enabled(self.settings)
        }
        self.tool_definitions = [tool.definition_for(self.settings) for tool in self.tools.values()]
        self.server_info = {"name": service.name, "title": service.title, "version": service.version}
        self.capabilities: dict[str, Any] = {"tools": {"listChanged": False}}
        self.deadlines = Deadlines()
        limits = self.server_settings
        self.call_slots = FairShare(
            limits.max_concurrent_calls,
            share_of(limits.max_concurrent_calls, limits.client_share),
            what="tool-call slots",
            settings="MCP_MAX_CONCURRENT_CALLS and MCP_CLIENT_SHARE; the wait by MCP_QUEUE_TIMEOUT_S",
        )
        self._handlers: dict[str, Callable[[dict[str, Any], CallInfo], Awaitable[dict[str, Any]]]] = {
            "initialize": self._initialize,
            "ping": self._ping,
            "tools/list": self._tools_list,
            "server/discover": self._discover,
        }

    # Life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Enter the service's lifespan; what it yields becomes ``state``. Its error fails start-up."""
        startup = StartupContext(self.settings, self.server_settings, self.metrics)
        lifespan_exit = contextlib.AsyncExitStack()
        self.state = await lifespan_exit.enter_async_context(self.service.open_state(startup))
        self._lifespan_exit = lifespan_exit

    async def stop(self) -> None:
        """Leave the lifespan (its code after ``yield`` runs); a failure there is logged, not raised."""
        lifespan_exit, self._lifespan_exit = self._lifespan_exit, None
        if lifespan_exit is None:
            return
        try:
            await lifespan_exit.aclose()
        except Exception:
            logger.exception("the lifespan of %s failed while closing its backends", self.service.name)

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless a configured backend is down; the checks' results are shared for a moment.

        ``/health`` is open to every caller, and a check may use the backend a tool call needs (a pooled
        database connection): callers that come while the checks run wait for that one run, so a flood
        of probes never holds more than one probe's worth of the backend, and a result younger than
        ``MCP_HEALTH_CACHE_S`` (default 0: none) is reused.
        """
        healthy, checks = await self._checked()
        degraded = not healthy or any(check["status"] == "down" for check in checks.values())
        body = {
            "status": "degraded" if degraded else "ok",
            "service": self.service.name,
            "version": self.service.version,
            "uptime": round(time.monotonic() - self.started_at, 3),
            "tools_count": len(self.tools),
            "checks": checks,
        }
        return healthy, body

    async def _checked(self) -> tuple[bool, dict[str, Any]]:
        if self._last_checks is not None and time.monotonic() < self._checks_fresh_until:
            return self._last_checks
        running = self._checks_running
        if running is None:
            running = self._checks_running = asyncio.get_running_loop().create_task(self._run_checks())
            running.add_done_callback(self._checks_done)
        # Shielded: one prober giving up does not cancel the run the others wait for.
        return await asyncio.shield(running)

    def _checks_done(self, run: asyncio.Task[tuple[bool, dict[str, Any]]]) -> None:
        self._checks_running = None
        if not run.cancelled() and run.exception() is None:
            self._last_checks = run.result()
            self._checks_fresh_until = time.monotonic() + self.server_settings.health_cache_s

    async def _run_checks(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        healthy = True
        context = CheckContext(self.settings, self.server_settings, self.state)
        for name, check in self.service.health_checks.items():
            try:
                result = await asyncio.wait_for(check(context), timeout=5.0)
            except Exception as exc:
                result = CheckResult("down", f"health check failed: {type(exc).__name__}: {exc}")
            checks[name] = {"status": result.status, "detail": result.detail}
            self.metrics.backend_up.labels(check=name).set(0 if result.status == "down" else 1)
            healthy = healthy and result.status != "down"
        for name, optional in self.optional_checks.items():
            try:
                result = await asyncio.wait_for(optional(), timeout=5.0)
            except Exception as exc:
                result = CheckResult("down", f"health check failed: {type(exc).__name__}: {exc}")
            checks[name] = {"status": result.status, "detail": result.detail}
            self.metrics.backend_up.labels(check=name).set(0 if result.status == "down" else 1)
        return healthy, checks

    # Dispatch ---------------------------------------------------------------------------------

    async def answer(self, message: Message, info: CallInfo, budget: int | None = None) -> Answer | None:
        """Answer one message, encoded: ``None`` for a notification or a client response.

        The answer is at most ``budget`` bytes (default ``MCP_MAX_REPLY_BYTES``): a larger tool result
        becomes an ``isError`` result, any other larger answer an error, each naming the limit.
        Nothing a handler raises escapes: it becomes an internal error carrying the request id.
        """
        if not message.is_request:
            return None
        limit = self.server_settings.max_reply_bytes if budget is None else budget
        method = message.method or ""
        try:
            if method == "tools/call":
                return await self._tools_call(message, info, limit)
            handler = self._handlers.get(method)
            if handler is None or not info.revision.answers(method):
                raise RpcError(protocol.METHOD_NOT_FOUND, f"Method not found: {method[:_ECHO_CHARS]}")
            result = await handler(message.params, info)
            body = self._encode(message, info, result)
        except RpcError as error:
            return self._refuse(message, info, error)
        except Exception:
            logger.exception("%s failed (request %s)", method[:_ECHO_CHARS], info.request_id)
            return self._refuse(message, info, self._internal_error(info))
        if len(body) > limit:
            answer = self._refuse(
                message, info, reply_too_large(method, len(body), limit, self.server_settings)
            )
            answer.too_large = True
            return answer
        self.metrics.count_request(method, info.transport, "ok")
        return Answer(body)

    def _refuse(self, message: Message, info: CallInfo, error: RpcError) -> Answer:
        """The error answer to a request, counted."""
        self.metrics.count_request(message.method or "", info.transport, "error")
        return Answer(protocol.dumps(protocol.error_response(message.id, error)), error.code)

    def _encode(self, message: Message, info: CallInfo, result: dict[str, Any]) -> bytes:
        if info.revision.stamps_results:
            result["resultType"] = "complete"
            result.setdefault("_meta", {})[protocol.SERVER_INFO_META_KEY] = self.server_info
        return protocol.dumps(protocol.result_response(message.id, result))

    @staticmethod
    def _internal_error(info: CallInfo) -> RpcError:
        return RpcError(protocol.INTERNAL_ERROR, "Internal error", {"requestId": info.request_id})

    async def _initialize(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        result: dict[str, Any] = {
            "protocolVersion": protocol.negotiate_handshake_version(params.get("protocolVersion")),
            "capabilities": self.capabilities,
            "serverInfo": self.server_info,
        }
        if self.service.instructions:
            result["instructions"] = self.service.instructions
        return result

    async def _ping(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        return {}

    async def _discover(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        result: dict[str, Any] = {
            "supportedVersions": list(protocol.MODERN_VERSIONS),
            "capabilities": self.capabilities,
            "cacheScope": "private",
            "ttlMs": 0,
            "_meta": {protocol.SERVER_INFO_META_KEY: self.server_info},
        }
        if self.service.instructions:
            result["instructions"] = self.service.instructions
        return result

    async def _tools_list(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        offset = _decode_cursor(params.get("cursor"))
        page_size = self.service.tools_page_size
        page = self.tool_definitions[offset : offset + page_size]
        result: dict[str, Any] = {"tools": page}
        if offset + page_size < len(self.tool_definitions):
            result["nextCursor"] = _encode_cursor(offset + page_size)
        if info.revision.cacheable_lists:
            result["cacheScope"] = "private"
            result["ttlMs"] = 0
        return result

    async def _tools_call(self, message: Message, info: CallInfo, budget: int) -> Answer:
        params = message.params
        name = params.get("name")
        if not isinstance(name, str):
            raise RpcError(protocol.INVALID_PARAMS, 'Invalid params: tools/call needs a "name" string')
        tool = self.tools.get(name)
        if tool is None:
            raise RpcError(protocol.INVALID_PARAMS, f"Unknown tool: {name[:_ECHO_CHARS]}")
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise RpcError(protocol.INVALID_PARAMS, 'Invalid params: "arguments" must be an object')
        meta = params.get("_meta")
        traceparent = meta.get("traceparent") if isinstance(meta, dict) else None
        if not isinstance(traceparent, str) or len(traceparent) > _MAX_TRACEPARENT_CHARS:
            traceparent = None
        record = ToolCallRecord(self.service.name, tool.name, info, logged_argument_names(arguments))
        self.metrics.call_started()
        try:
            if tracing_enabled():
                with tool_span(record, traceparent or info.traceparent):
                    result = await self._run_tool(tool, arguments, info, record)
                    return self._call_answer(message, info, tool, result, record, budget)
            result = await self._run_tool(tool, arguments, info, record)
            return self._call_answer(message, info, tool, result, record, budget)
        except BaseException:
            if record.outcome == "ok":
                record.outcome = "internal_error"
            raise
        finally:
            self.metrics.call_finished(record)

    def _call_answer(
        self,
        message: Message,
        info: CallInfo,
        tool: Tool,
        result: dict[str, Any],
        record: ToolCallRecord,
        budget: int,
    ) -> Answer:
        """The encoded answer to a tool call; one that cannot be encoded or is over budget is an isError."""
        try:
            body = self._encode(message, info, result)
        except _ENCODING_ERRORS as exc:
            record.outcome, record.error_type = "unencodable", type(exc).__name__
            body = self._encode(message, info, _error_result(_unencodable(tool.name, exc)))
        too_large = len(body) > budget
        if too_large:
            record.outcome = "too_large"
            notice = reply_too_large(f"tool {tool.name}", len(body), budget, self.server_settings)
            body = self._encode(message, info, _error_result(notice.message))
        self.metrics.count_request("tools/call", info.transport, "ok")
        return Answer(body, None, too_large)

    async def _run_tool(
        self, tool: Tool, arguments: dict[str, Any], info: CallInfo, record: ToolCallRecord
    ) -> dict[str, Any]:
        try:
            # The model's validator and serializer, called directly: model_validate and model_dump wrap
            # them in a Python frame each that costs as much as validating a small tool's arguments.
            validated = tool.input_model.__pydantic_validator__.validate_python(arguments)
        except ValidationError as exc:
            record.outcome = "invalid_arguments"
            return _error_result(describe_validation_error(tool.name, exc))
        except RecursionError as exc:
            record.outcome, record.error_type = "invalid_arguments", type(exc).__name__
            return _error_result(f"Invalid arguments for tool {tool.name}: nested too deeply to validate")
        context = (
            ToolContext(
                settings=self.settings,
                server_settings=self.server_settings,
                state=self.state,
                request_id=info.request_id,
                client_id=info.client_id,
                protocol_version=info.protocol_version,
                transport=info.transport,
            )
            if tool.takes_context
            else None
        )
        slots, client = self.call_slots, info.client_id
        try:
            await slots.acquire(client, self.server_settings.queue_timeout_s)
        except ShareTimeout as exc:
            record.outcome = "busy"
            return _error_result(str(exc))
        try:
            work = tool.invoke(validated, context)
            output = await self.deadlines.run(work, self.server_settings.tool_timeout_s)
        except ToolError as exc:
            record.outcome = "tool_error"
            return _error_result(exc.message)
        except TimeoutError:
            record.outcome = "timeout"
            return _error_result(
                f"Tool {tool.name} timed out after {self.server_settings.tool_timeout_s:g} s"
            )
        except asyncio.CancelledError:
            record.outcome = "cancelled"
            raise
        except RecursionError:
            record.outcome, record.error_type = "internal_error", "RecursionError"
            logger.warning("tool %s hit the recursion limit (request %s)", tool.name, info.request_id)
            return _error_result(
                f"Tool {tool.name} failed: its data is nested too deeply to process (RecursionError)"
            )
        except Exception as exc:
            record.outcome = "internal_error"
            record.error_type = type(exc).__name__
            logger.exception("tool %s failed (request %s)", tool.name, info.request_id)
            raise RpcError(
                protocol.INTERNAL_ERROR, "Internal error", {"requestId": info.request_id}
            ) from None
        finally:
            slots.release(client)
        if not isinstance(output, tool.output_model):
            record.outcome = "internal_error"
            logger.error(
                "tool %s returned %s, not %s", tool.name, type(output).__name__, tool.output_model.__name__
            )
            raise RpcError(protocol.INTERNAL_ERROR, "Internal error", {"requestId": info.request_id})
        record.outcome = "ok"
        try:
            return call_result(output)
        except _ENCODING_ERRORS as exc:
            record.outcome, record.error_type = "unencodable", type(exc).__name__
            return _error_result(_unencodable(tool.name, exc))


def reply_too_large(what: str, size: int, limit: int, settings: ServerSettings) -> RpcError:
    """The error for an answer over its byte budget (``limit`` is what was left of the budget)."""
    cap = settings.max_reply_bytes
    left = "" if limit == cap else f" (the {limit} bytes left of the batch's budget)"
    return RpcError(
        protocol.INTERNAL_ERROR,
        f"Reply too large: the answer of {what[:_ECHO_CHARS]} is {size} bytes, over the limit of {cap} "
        f"bytes{left} set by MCP_MAX_REPLY_BYTES; ask for less (a narrower query, a smaller limit or "
        "page), or raise MCP_MAX_REPLY_BYTES",
        {"limit": cap, "size": size, "setting": "MCP_MAX_REPLY_BYTES"},
    )


def _unencodable(tool_name: str, exc: BaseException) -> str:
    reason = str(exc)[:200]
    text = f"Tool {tool_name} returned a result that cannot be sent as JSON ({type(exc).__name__}: {reason})"
    if isinstance(exc, RecursionError) or "depth" in reason or "ecursion" in reason:
        text += ": it is nested deeper than the JSON encoders allow (about 250 levels)"
    return text


class Deadlines:
    """Tool-call timeouts with one timer for all calls in flight.

    ``asyncio.timeout`` arms and disarms a timer per call, which costs more than a whole no-op call;
    here a call only enters and leaves a dict, and the one timer is set for the earliest deadline.
    """

    def __init__(self) -> None:
        self.due: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.timer: asyncio.TimerHandle | None = None
        # Looking the running loop up makes a getpid() system call on Python 3.11: keep the last one.
        self.loop: asyncio.AbstractEventLoop | None = None

    async def run(self, work: Awaitable[BaseModel], seconds: float) -> BaseModel:
        """``await work``, raising :class:`TimeoutError` once ``seconds`` have passed."""
        loop = self.loop
        task = asyncio.current_task(loop) if loop is not None else None
        if task is None:
            loop = self.loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
        assert task is not None and loop is not None
        deadline = loop.time() + seconds
        self.due[task] = deadline
        if self.timer is None or deadline < self.timer.when():
            self._arm(loop, deadline)
        try:
            return await work
        except asyncio.CancelledError:
            if task in self.expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            del self.due[task]
            self.expired.discard(task)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self.timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        upcoming = []
        for task, deadline in self.due.items():
            if task in self.expired:
                continue
            if deadline <= now:
                self.expired.add(task)
                task.cancel()
            else:
                upcoming.append(deadline)
        if upcoming:
            self._arm(loop, min(upcoming))


def _error_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"tools:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    if cursor is None:
        return 0
    if not isinstance(cursor, str):
        raise RpcError(protocol.INVALID_PARAMS, "Invalid params: cursor must be a string")
    try:
        kind, _, offset = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        value = int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise RpcError(
            protocol.INVALID_PARAMS, f"Invalid params: unknown cursor {cursor[:_ECHO_CHARS]!r}"
        ) from None
    if kind != "tools" or value < 0:
        raise RpcError(protocol.INVALID_PARAMS, f"Invalid params: unknown cursor {cursor[:_ECHO_CHARS]!r}")
    return value
