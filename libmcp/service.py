"""The service declaration: its tools, the lifespan that opens its backends, and its health checks.

A service module builds one :class:`Service`, typed by its settings and by the state its lifespan
yields, and decorates its functions::

    @dataclass(frozen=True, slots=True)
    class NotesState:
        pool: Pool

    service: Service[NotesSettings, NotesState] = Service("notes", version="1", settings_class=NotesSettings)
    Context = ToolContext[NotesSettings, NotesState]

    @service.lifespan
    async def open_pool(ctx: StartupContext[NotesSettings]) -> AsyncIterator[NotesState]:
        pool = await Pool.open(ctx.settings.notes_url)
        try:
            yield NotesState(pool)
        finally:
            await pool.close()

    @service.tool(title="Add a note")
    async def add_note(args: AddArgs, ctx: Context) -> Added:
        \"\"\"Store a note and return its id.\"\"\"
        return Added(id=await ctx.state.pool.insert(args.text))

A service without backends declares no lifespan: its state is ``None`` (``StateT``'s default).
:class:`libmcp.server.Server` enters the lifespan on start-up and leaves it on shutdown.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, Literal, TypeAlias, cast

from libmcp.completions import Completer, CompletionFunction, build_completer
from libmcp.config import ServerSettings, ServiceSettings
from libmcp.observability import Metrics
from libmcp.prompts import Prompt, PromptFunction, build_prompt
from libmcp.resources import Resource, ResourceFunction, ResourceTemplate, build_resource, build_template
from libmcp.tools import SettingsT, StateT, Tool, ToolFunction, build_tool

CheckStatus = Literal["ok", "down", "not_configured"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The state of one backend a service depends on, as ``/health`` reports it."""

    status: CheckStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StartupContext(Generic[SettingsT]):
    """Given to the lifespan: the settings it opens the backends with, and the metrics registry."""

    settings: SettingsT
    server_settings: ServerSettings
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class CheckContext(Generic[SettingsT, StateT]):
    """Given to health checks: the settings and the state the lifespan yielded."""

    settings: SettingsT
    server_settings: ServerSettings
    state: StateT


Lifespan: TypeAlias = Callable[[StartupContext[SettingsT]], AsyncIterator[StateT]]
_OpenState: TypeAlias = Callable[[StartupContext[SettingsT]], AbstractAsyncContextManager[StateT]]
HealthCheck: TypeAlias = Callable[[CheckContext[SettingsT, StateT]], Awaitable[CheckResult]]


class Service(Generic[SettingsT, StateT]):
    """A named set of typed tools, the lifespan that opens and closes their backends, and health checks."""

    def __init__(
        self,
        name: str,
        *,
        version: str,
        title: str | None = None,
        instructions: str | None = None,
        # mypy cannot tell that this default is used only when SettingsT is its default, ServiceSettings.
        settings_class: type[SettingsT] = ServiceSettings,  # type: ignore[assignment]
        tools_page_size: int = 100,
    ) -> None:
        self.name = name
        self.version = version
        self.title = title or name
        self.instructions = instructions
        self.settings_class = settings_class
        self.tools_page_size = tools_page_size
        self.tools: dict[str, Tool] = {}
        self.resources: dict[str, Resource] = {}
        self.resource_templates: dict[str, ResourceTemplate] = {}
        self.prompts: dict[str, Prompt] = {}
        self.completers: list[Completer] = []
        self.health_checks: dict[str, HealthCheck[SettingsT, StateT]] = {}
        self._lifespan: _OpenState[SettingsT, StateT] | None = None

    def tool(
        self,
        *,
        name: str | None = None,
        title: str | None = None,
        read_only: bool = False,
        destructive: bool | None = None,
        idempotent: bool = False,
        open_world: bool = False,
        enabled: Callable[[SettingsT], bool] | None = None,
        enabled_when: str | None = None,
        hints: Callable[[SettingsT], dict[str, bool]] | None = None,
    ) -> Callable[[ToolFunction], ToolFunction]:
        """Register an async function as a tool.

        ``enabled(settings)`` hides it from a deployment (not listed, not callable); ``enabled_when``
        says in words when it is on, for the generated docs (``"GITHUB_ALLOW_WRITE=true"``).
        ``hints(settings)`` overrides annotations per deployment (``{"read_only": True}``).
        """

        def register(function: ToolFunction) -> ToolFunction:
            tool = build_tool(
                function,
                name=name,
                title=title,
                read_only=read_only,
                destructive=destructive,
                idempotent=idempotent,
                open_world=open_world,
                enabled=enabled,
                enabled_when=enabled_when,
                hints=hints,
            )
            if tool.name in self.tools:
                raise ValueError(f"tool {tool.name} is registered twice in service {self.name}")
            self.tools[tool.name] = tool
            return function

        return register

    def resource(
        self, *, uri: str, name: str | None = None, title: str | None = None, mime_type: str | None = None
    ) -> Callable[[ResourceFunction], ResourceFunction]:
        """Register an async function as the resource at ``uri``; it returns a TextResource or a
        BlobResource and may take a ToolContext. The docstring is the description."""

        def register(function: ResourceFunction) -> ResourceFunction:
            resource = build_resource(function, uri=uri, name=name, title=title, mime_type=mime_type)
            if resource.uri in self.resources:
                raise ValueError(f"resource {resource.uri} is registered twice in service {self.name}")
            self.resources[resource.uri] = resource
            return function

        return register

    def resource_template(
        self,
        uri_template: str,
        *,
        name: str | None = None,
        title: str | None = None,
        mime_type: str | None = None,
    ) -> Callable[[ResourceFunction], ResourceFunction]:
        """Register an async function as the resources matching ``uri_template`` (``{var}`` one segment,
        ``{+var}`` may hold ``/``); its model's fields are the template's variables."""

        def register(function: ResourceFunction) -> ResourceFunction:
            template = build_template(
                function, uri_template=uri_template, name=name, title=title, mime_type=mime_type
            )
            if template.uri_template in self.resource_templates:
                raise ValueError(f"template {uri_template} is registered twice in service {self.name}")
            self.resource_templates[template.uri_template] = template
            return function

        return register

    def prompt(
        self, *, name: str | None = None, title: str | None = None
    ) -> Callable[[PromptFunction], PromptFunction]:
        """Register an async function returning a PromptResult as a prompt; its model's fields are the
        prompt's arguments (their descriptions from ``Field(description=...)``)."""

        def register(function: PromptFunction) -> PromptFunction:
            prompt = build_prompt(function, name=name, title=title)
            if prompt.name in self.prompts:
                raise ValueError(f"prompt {prompt.name} is registered twice in service {self.name}")
            self.prompts[prompt.name] = prompt
            return function

        return register

    def completion(
        self, *, argument: str, prompt: str | None = None, template: str | None = None
    ) -> Callable[[CompletionFunction], CompletionFunction]:
        """Register the completer of one prompt argument or one template variable; it takes
        ``(CompletionRequest, ToolContext)`` and returns the matching values."""

        def register(function: CompletionFunction) -> CompletionFunction:
            completer = build_completer(function, prompt=prompt, template=template, argument=argument)
            if any(known.key == completer.key for known in self.completers):
                raise ValueError(f"completion {completer.key} is registered twice in service {self.name}")
            self.completers.append(completer)
            return function

        return register

    def lifespan(self, function: Lifespan[SettingsT, StateT]) -> Lifespan[SettingsT, StateT]:
        """Declare how the service opens its backends: an async generator that yields the state tools
        and health checks read as ``ctx.state``, and closes the backends after the ``yield`` (in a
        ``finally``, so they close however the server stops). A service has one lifespan."""
        if self._lifespan is not None:
            raise ValueError(f"service {self.name} already has a lifespan: open every backend in that one")
        if not inspect.isasyncgenfunction(function):
            raise TypeError(
                f"the lifespan {function.__name__} of service {self.name} must be an async generator "
                "function: open the backends, yield the state, close them after the yield"
            )
        self._lifespan = contextlib.asynccontextmanager(function)
        return function

    def open_state(self, context: StartupContext[SettingsT]) -> AbstractAsyncContextManager[StateT]:
        """The lifespan for these settings, as an async context manager (yielding ``None`` without one)."""
        if self._lifespan is None:
            # Without a lifespan StateT is its default, None.
            return contextlib.nullcontext(cast(StateT, None))
        return self._lifespan(context)

    def health_check(
        self, name: str
    ) -> Callable[[HealthCheck[SettingsT, StateT]], HealthCheck[SettingsT, StateT]]:
        """Register a check of one backend; ``/health`` reports it under ``name``."""

        def register(check: HealthCheck[SettingsT, StateT]) -> HealthCheck[SettingsT, StateT]:
            self.health_checks[name] = check
            return check

        return register
