"""The server that dispatches MCP methods to a service (declared in :mod:`libmcp.service`).

:class:`Server` binds a service to its loaded settings, runs its lifespan, and answers decoded JSON-RPC
messages; transports only move bytes to and from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from libmcp import protocol
from libmcp.calls import CallInfo
from libmcp.completions import CompletionRequest, completion_result
from libmcp.config import ServerSettings, ServiceSettings
from libmcp.content import BlobResourceContents, TextResourceContents, wire
from libmcp.fairness import FairShare, ShareTimeout, share_of
from libmcp.observability import Metrics, ToolCallRecord, logged_argument_names, tool_span, tracing_enabled
from libmcp.pagination import page
from libmcp.prompts import PromptResult
from libmcp.protocol import Message, RpcError
from libmcp.resources import BlobResource, ResourceNotFound, TextResource
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
        self._check_completers()
        if service.resources or service.resource_templates:
            self.capabilities["resources"] = {"listChanged": False, "subscribe": False}
        if service.prompts:
            self.capabilities["prompts"] = {"listChanged": False}
        if service.completers:
            self.capabilities["completions"] = {}
        self.resource_definitions = [resource.definition() for resource in service.resources.values()]
        self.template_definitions = [t.definition() for t in service.resource_templates.values()]
        self.prompt_definitions = [prompt.definition() for prompt in service.prompts.values()]
        self.completers = {completer.key: completer for completer in service.completers}
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
        if "resources" in self.capabilities:
            self._handlers["resources/list"] = self._resources_list
            self._handlers["resources/templates/list"] = self._templates_list
            self._handlers["resources/read"] = self._resources_read
        if "prompts" in self.capabilities:
            self._handlers["prompts/list"] = self._prompts_list
            self._handlers["prompts/get"] = self._prompts_get
        if "completions" in self.capabilities:
            self._handlers["completion/complete"] = self._complete

    def _check_completers(self) -> None:
        """Every completer names a declared prompt argument or template variable."""
        for completer in self.service.completers:
            if completer.ref_type == "ref/prompt":
                prompt = self.service.prompts.get(completer.target)
                known = prompt.argument_names() if prompt else None
                what = f"prompt {completer.target}"
            else:
                template = self.service.resource_templates.get(completer.target)
                known = template.variables if template else None
                what = f"resource template {completer.target}"
            if known is None:
                raise ValueError(f"completion {completer.function.__name__} names an unknown {what}")
            if completer.argument not in known:
                raise ValueError(
                    f"completion {completer.function.__name__}: {what} has no argument {completer.argument!r}"
                )

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
        result = page(
            "tools", "tools", self.tool_definitions, params.get("cursor"), self.service.tools_page_size
        )
        if info.revision.cacheable_lists:
            result["cacheScope"] = "private"
            result["ttlMs"] = 0
        return result

    # Resources, prompts, completions ------------------------------------------------------------

    def _context(self, info: CallInfo, progress_token: str | int | None = None) -> ToolContext[Any, Any]:
        return ToolContext(
            progress_token=progress_token,
            notify=info.notify,
            settings=self.settings,
            server_settings=self.server_settings,
            state=self.state,
            request_id=info.request_id,
            client_id=info.client_id,
            protocol_version=info.protocol_version,
            transport=info.transport,
        )

    async def _run_declared(self, what: str, work: Awaitable[Any], info: CallInfo) -> Any:
        """Run a resource, prompt or completion function like a tool: in a call slot, under the tool
        timeout; what it raises on purpose becomes the JSON-RPC error the spec names."""
        slots, client, settings = self.call_slots, info.client_id, self.server_settings
        try:
            await slots.acquire(client, settings.queue_timeout_s)
        except ShareTimeout as exc:
            if inspect.iscoroutine(work):
                work.close()
            raise RpcError(protocol.INTERNAL_ERROR, str(exc)) from None
        try:
            return await self.deadlines.run(work, settings.tool_timeout_s)
        except ResourceNotFound as exc:
            raise _not_found(exc.uri, exc.reason) from None
        except ToolError as exc:
            raise RpcError(protocol.INVALID_PARAMS, exc.message) from None
        except TimeoutError:
            raise RpcError(
                protocol.INTERNAL_ERROR,
                f"{what} timed out after {settings.tool_timeout_s:g} s (MCP_TOOL_TIMEOUT_S)",
            ) from None
        finally:
            slots.release(client)

    def _cacheable(self, result: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        if info.revision.cacheable_lists:
            result["cacheScope"] = "private"
            result["ttlMs"] = 0
        return result

    async def _resources_list(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        size = self.server_settings.list_page_size
        result = page("resources", "resources", self.resource_definitions, params.get("cursor"), size)
        return self._cacheable(result, info)

    async def _templates_list(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        size = self.server_settings.list_page_size
        result = page("templates", "resourceTemplates", self.template_definitions, params.get("cursor"), size)
        return self._cacheable(result, info)

    async def _resources_read(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise RpcError(protocol.INVALID_PARAMS, 'Invalid params: resources/read needs a "uri" string')
        limit = self.server_settings.max_uri_chars
        if len(uri) > limit:
            raise RpcError(
                protocol.INVALID_PARAMS,
                f"Invalid params: the uri is {len(uri)} characters, over the limit of {limit} "
                "(MCP_MAX_URI_CHARS)",
                {"limit": limit, "size": len(uri), "setting": "MCP_MAX_URI_CHARS"},
            )
        context = self._context(info)
        resource = self.service.resources.get(uri)
        if resource is not None:
            declared = resource.mime_type
            body = await self._run_declared(f"resource {uri}", resource.read(context), info)
        else:
            for template in self.service.resource_templates.values():
                values = template.match(uri)
                if values is None:
                    continue
                try:
                    variables = template.variables_model.model_validate(values)
                except ValidationError as exc:
                    raise RpcError(
                        protocol.INVALID_PARAMS,
                        describe_validation_error(f"resource template {template.uri_template}", exc),
                    ) from None
                declared = template.mime_type
                work = template.read(variables, context)
                body = await self._run_declared(f"resource {uri[:_ECHO_CHARS]}", work, info)
                break
            else:
                raise _not_found(uri)
        return self._cacheable({"contents": [self._contents(uri, body, declared)]}, info)

    def _contents(self, uri: str, body: Any, declared: str | None) -> dict[str, Any]:
        if isinstance(body, TextResource):
            return wire(TextResourceContents(uri=uri, text=body.text, mimeType=body.mime_type or declared))
        if isinstance(body, BlobResource):
            # base64 is 4/3 of the bytes: refuse before encoding what could not be sent.
            encoded = (len(body.data) + 2) // 3 * 4
            budget = self.server_settings.max_reply_bytes
            if encoded > budget:
                raise reply_too_large(f"resource {uri}", encoded, budget, self.server_settings)
            return wire(BlobResourceContents.of(uri, body.data, body.mime_type or declared))
        logger.error("resource %s returned %s, not a TextResource or BlobResource", uri, type(body).__name__)
        raise RpcError(protocol.INTERNAL_ERROR, "Internal error", {"uri": uri[:_ECHO_CHARS]})

    async def _prompts_list(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        size = self.server_settings.list_page_size
        result = page("prompts", "prompts", self.prompt_definitions, params.get("cursor"), size)
        return self._cacheable(result, info)

    async def _prompts_get(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str):
            raise RpcError(protocol.INVALID_PARAMS, 'Invalid params: prompts/get needs a "name" string')
        prompt = self.service.prompts.get(name)
        if prompt is None:
            raise RpcError(protocol.INVALID_PARAMS, f"Invalid params: unknown prompt {name[:_ECHO_CHARS]!r}")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise RpcError(protocol.INVALID_PARAMS, 'Invalid params: "arguments" must be an object')
        validated = None
        if prompt.arguments_model is not None:
            try:
                validated = prompt.arguments_model.model_validate(arguments)
            except ValidationError as exc:
                raise RpcError(
                    protocol.INVALID_PARAMS, describe_validation_error(f"prompt {prompt.name}", exc)
                ) from None
        elif arguments:
            raise RpcError(
                protocol.INVALID_PARAMS, f"Invalid params: prompt {prompt.name} takes no arguments"
            )
        work = prompt.render(validated, self._context(info))
        result = await self._run_declared(f"prompt {prompt.name}", work, info)
        if not isinstance(result, PromptResult):
            logger.error("prompt %s returned %s, not a PromptResult", prompt.name, type(result).__name__)
            raise self._internal_error(info)
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)

    async def _complete(self, params: dict[str, Any], info: CallInfo) -> dict[str, Any]:
        ref, argument = params.get("ref"), params.get("argument")
        if not isinstance(ref, dict) or not isinstance(argument, dict):
            raise RpcError(
                protocol.INVALID_PARAMS,
                'Invalid params: completion/complete needs "ref" and "argument" objects',
            )
        ref_type = ref.get("type")
        target = ref.get("name") if ref_type == "ref/prompt" else ref.get("uri")
        name, value = argument.get("name"), argument.get("value")
        if ref_type not in ("ref/prompt", "ref/resource") or not isinstance(target, str):
            raise RpcError(
                protocol.INVALID_PARAMS,
                'Invalid params: ref must be {"type": "ref/prompt", "name": ...} or '
                '{"type": "ref/resource", "uri": ...}',
            )
        if not isinstance(name, str) or not isinstance(value, str):
            raise RpcError(protocol.INVALID_PARAMS, "Invalid params: argument needs string name and value")
        limit = self.server_settings.max_uri_chars
        if len(value) > limit:
            raise RpcError(
                protocol.INVALID_PARAMS,
                f"Invalid params: the value to complete is {len(value)} characters, over the limit of "
                f"{limit} (MCP_MAX_URI_CHARS)",
                {"limit": limit, "size": len(value), "setting": "MCP_MAX_URI_CHARS"},
            )
        known = self.service.prompts if ref_type == "ref/prompt" else self.service.resource_templates
        if target not in known:
            raise RpcError(
                protocol.INVALID_PARAMS, f"Invalid params: unknown {ref_type[4:]} {target[:_ECHO_CHARS]!r}"
            )
        completer = self.completers.get((ref_type, target, name))
        if completer is None:
            return completion_result([])
        context = params.get("context")
        given = context.get("arguments") if isinstance(context, dict) else None
        arguments = {k: v for k, v in given.items() if isinstance(v, str)} if isinstance(given, dict) else {}
        request = CompletionRequest(argument=name, value=value, arguments=arguments)
        values = await self._run_declared(
            f"completion of {name}", completer.function(request, self._context(info)), info
        )
        if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
            logger.error("completion %s returned %s, not a list of str", name, type(values).__name__)
            raise self._internal_error(info)
        return completion_result(values)

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
                    result = await self._run_tool(tool, arguments, info, record, meta)
                    return self._call_answer(message, info, tool, result, record, budget)
            result = await self._run_tool(tool, arguments, info, record, meta)
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
        self,
        tool: Tool,
        arguments: dict[str, Any],
        info: CallInfo,
        record: ToolCallRecord,
        arguments_meta: Any = None,
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
        context = self._context(info, progress_token_of(arguments_meta)) if tool.takes_context else None
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


def progress_token_of(meta: Any) -> str | int | None:
    """A request's ``_meta.progressToken`` when it is a string or an integer (else none)."""
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    if isinstance(token, bool) or not isinstance(token, str | int):
        return None
    return token[:256] if isinstance(token, str) else token


def _not_found(uri: str, reason: str = "") -> RpcError:
    detail = f": {reason}" if reason else ""
    return RpcError(
        protocol.RESOURCE_NOT_FOUND,
        f"Resource not found: {uri[:_ECHO_CHARS]}{detail}",
        {"uri": uri[:_ECHO_CHARS]},
    )


def _error_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}
