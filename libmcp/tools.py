"""Typed tools: the declaration a service writes, and the schema and validation libmcp derives from it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, get_origin, get_type_hints

import orjson
import pydantic_core
from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, ValidationError
from pydantic_core import core_schema
from typing_extensions import TypeVar

from libmcp.config import ServiceSettings

if TYPE_CHECKING:
    from libmcp.config import ServerSettings

# What a service is generic over: its settings class and the state its lifespan yields (None without one).
SettingsT = TypeVar("SettingsT", bound=ServiceSettings, default=ServiceSettings)
StateT = TypeVar("StateT", default=None)


class ToolInput(BaseModel):
    """Base class for tool arguments: unknown arguments are refused, so a model learns the real names."""

    model_config = ConfigDict(extra="forbid")


class ToolOutput(BaseModel):
    """Base class for tool results. Override :meth:`mcp_text` to choose the text block clients show.

    The hook has a prefixed name so that a result may have an ordinary field called ``text``.
    """

    def mcp_text(self) -> str | EncodedText:
        return json_text(self.model_dump(mode="json", by_alias=True))

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if callable(cls.__dict__.get("text")):
            raise TypeError(f"{cls.__name__}.text() would never be called: override mcp_text() instead")


class EncodedText:
    """A text held as its JSON encoding (a quoted, escaped UTF-8 string literal), never as a ``str``.

    For large text a tool already has as UTF-8 bytes, such as a file's content: :meth:`from_utf8`
    checks and escapes the bytes in one pass, where decoding them to a ``str`` and encoding that again
    would cost several times more. A :class:`ToolOutput` field of this type is a string in the output
    schema and on the wire; the answer places the encoding as it is in ``structuredContent`` and, when
    :meth:`ToolOutput.mcp_text` returns the field, in the text block too. ``str(value)`` decodes it
    for Python code that needs the text; a model built with a ``str`` there encodes it.
    """

    __slots__ = ("json",)

    def __init__(self, json: bytes) -> None:
        self.json = json

    @classmethod
    def from_utf8(cls, data: bytes) -> EncodedText:
        """The text of UTF-8 ``data``; ``ValueError`` when it is not UTF-8 (no offset: decode for that)."""
        if data.isascii():  # decoding ASCII is a copy, and orjson escapes an ASCII str twice as fast
            return cls(orjson.dumps(data.decode("ascii")))
        return cls(pydantic_core.to_json(data, bytes_mode="utf8"))

    @classmethod
    def from_text(cls, text: str) -> EncodedText:
        return cls(orjson.dumps(text))

    def __str__(self) -> str:
        text: str = orjson.loads(self.json)
        return text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncodedText):
            return self.json == other.json
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.json)

    def __repr__(self) -> str:
        return f"EncodedText({self.json[:40]!r}{'...' if len(self.json) > 40 else ''})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from_str = core_schema.no_info_after_validator_function(cls.from_text, core_schema.str_schema())
        return core_schema.json_or_python_schema(
            json_schema=from_str,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_str]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                str, return_schema=core_schema.str_schema()
            ),
        )


class ToolError(Exception):
    """A failure a tool reports on purpose: it reaches the client as an ``isError`` result with this text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class ToolContext(Generic[SettingsT, StateT]):
    """What a tool may know about the call it serves: the service's settings and the state its lifespan
    yielded, typed by the parameters (``ToolContext[FilesystemSettings, FilesystemState]``).

    ``server_settings.max_reply_bytes`` (``MCP_MAX_REPLY_BYTES``) is the byte budget of the call's whole
    answer: a result whose encoded reply would be larger reaches the client as an ``isError`` result
    naming the limit instead. A tool that can build large results (rows, file contents, pages) reads
    it to stop early and say it truncated, rather than build what cannot be sent.
    """

    settings: SettingsT
    server_settings: ServerSettings
    state: StateT
    request_id: str
    client_id: str
    protocol_version: str
    transport: str
    # The request's _meta.progressToken and the caller's stream, when both exist.
    progress_token: str | int | None = None
    notify: Callable[[dict[str, Any]], None] | None = None

    def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Send ``notifications/progress`` for this call when the client asked for it (a progress
        token) and a stream to the client exists (``/sse`` today); a no-op otherwise."""
        if self.notify is None or self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message[:1000]
        self.notify({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})


ToolFunction = Callable[..., Awaitable[ToolOutput]]


@dataclass(frozen=True, slots=True)
class ToolAnnotations:
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool

    def to_dict(self) -> dict[str, bool]:
        return {
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }


class _NoArguments(ToolInput):
    pass


@dataclass(slots=True)
class Tool:
    """One registered tool with its derived schemas."""

    name: str
    title: str
    description: str
    function: ToolFunction
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    annotations: ToolAnnotations
    takes_input: bool
    takes_context: bool
    enabled: Callable[[Any], bool] | None = None
    enabled_when: str | None = None
    hints: Callable[[Any], dict[str, bool]] | None = None
    definition: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.definition = {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": object_schema(self.input_model),
            "outputSchema": object_schema(self.output_model),
            "annotations": {"title": self.title, **self.annotations.to_dict()},
        }

    def definition_for(self, settings: Any) -> dict[str, Any]:
        """The definition a deployment lists: ``hints(settings)`` may override annotations."""
        if self.hints is None:
            return self.definition
        annotations = replace(self.annotations, **self.hints(settings))
        return {**self.definition, "annotations": {"title": self.title, **annotations.to_dict()}}

    def invoke(self, arguments: BaseModel, context: ToolContext[Any, Any] | None) -> Awaitable[ToolOutput]:
        """The tool's coroutine for these arguments (not awaited here: one frame less per call);
        ``context`` is ``None`` only for a tool that does not take one."""
        if self.takes_input:
            if self.takes_context:
                return self.function(arguments, context)
            return self.function(arguments)
        if self.takes_context:
            return self.function(context)
        return self.function()


def object_schema(model: type[BaseModel]) -> dict[str, Any]:
    """JSON Schema 2020-12 of a model, always an object schema as MCP requires."""
    schema = model.model_json_schema(mode="validation")
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def typed_parameters(
    function: Callable[..., Any], kind: str, type_hints: dict[str, Any] | None = None
) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model a declared function takes (or ``None``) and whether it takes a
    :class:`ToolContext`, which comes after the model: the one signature of tools, resources,
    prompts and completions. ``kind`` names the declaration in the errors."""
    hints = get_type_hints(function) if type_hints is None else type_hints
    model: type[BaseModel] | None = None
    takes_context = False
    for parameter in inspect.signature(function).parameters.values():
        hint = hints.get(parameter.name)
        where = f"{kind} {function.__name__}: parameter {parameter.name!r}"
        # invoke() passes the model, then the context, by position.
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{where} must be a plain positional parameter (no *, ** or keyword-only)")
        # A parametrized ToolContext[Settings, State] is an alias whose origin is the class.
        if get_origin(hint) is ToolContext or (isinstance(hint, type) and issubclass(hint, ToolContext)):
            if takes_context:
                raise TypeError(f"{where} is a second ToolContext: a {kind} takes at most one")
            takes_context = True
        elif isinstance(hint, type) and issubclass(hint, BaseModel):
            if model is not None:
                raise TypeError(
                    f"{where} is a second model: a {kind}'s arguments are the fields of one model"
                )
            if takes_context:
                raise TypeError(f"{where}: the arguments model must come before the ToolContext")
            model = hint
        else:
            raise TypeError(f"{where} must be a model or ToolContext")
    return model, takes_context


def call_declared(
    function: Callable[..., Awaitable[Any]],
    arguments: BaseModel | None,
    context: ToolContext[Any, Any] | None,
    takes_input: bool,
    takes_context: bool,
) -> Awaitable[Any]:
    """The coroutine of a declared function, given what its signature takes."""
    if takes_input:
        return function(arguments, context) if takes_context else function(arguments)
    return function(context) if takes_context else function()


def build_tool(
    function: ToolFunction,
    *,
    name: str | None,
    title: str | None,
    read_only: bool,
    destructive: bool | None,
    idempotent: bool,
    open_world: bool,
    enabled: Callable[[Any], bool] | None,
    enabled_when: str | None = None,
    hints: Callable[[Any], dict[str, bool]] | None = None,
) -> Tool:
    """Inspect a typed async function and make a :class:`Tool` of it.

    The function takes an optional pydantic model (its arguments) and an optional :class:`ToolContext`
    (parametrized or not), and returns a :class:`ToolOutput` subclass; the docstring is the description.
    """
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"tool {function.__name__} must be an async function")
    type_hints = get_type_hints(function)
    output_model = type_hints.get("return")
    if not (isinstance(output_model, type) and issubclass(output_model, BaseModel)):
        raise TypeError(f"tool {function.__name__} must return a pydantic model")
    model, takes_context = typed_parameters(function, "tool", type_hints)
    input_model: type[BaseModel] = model or _NoArguments
    takes_input = model is not None
    tool_name = name or function.__name__
    if (
        not tool_name.isascii()
        or not tool_name.replace("_", "").isalnum()
        or not tool_name.islower()
        or len(tool_name) > 48
    ):
        raise ValueError(f"tool name {tool_name!r} must be short snake_case (48 characters at most)")
    description = inspect.cleandoc(function.__doc__ or "").strip()
    if not description:
        raise ValueError(f"tool {tool_name} needs a docstring: it is the description models read")
    return Tool(
        name=tool_name,
        title=title or tool_name.replace("_", " ").capitalize(),
        description=description,
        function=function,
        input_model=input_model,
        output_model=output_model,
        annotations=ToolAnnotations(
            read_only=read_only,
            destructive=(not read_only) if destructive is None else destructive,
            idempotent=idempotent,
            open_world=open_world,
        ),
        takes_input=takes_input,
        takes_context=takes_context,
        enabled=enabled,
        enabled_when=enabled_when,
        hints=hints,
    )


# An account of bad arguments names at most this many problems, each location cut to this length:
# a hostile call can send 50,000 unknown arguments, and the answer must not grow with them.
MAX_DESCRIBED_PROBLEMS = 20
MAX_LOCATION_CHARS = 100


def describe_validation_error(tool_name: str, error: ValidationError) -> str:
    """A one-line account of bad arguments that names each field, so a model can correct the call."""
    problems = []
    items = error.errors(include_url=False)
    for item in items[:MAX_DESCRIBED_PROBLEMS]:
        location = ".".join(str(part) for part in item["loc"]) or "arguments"
        if len(location) > MAX_LOCATION_CHARS:
            location = location[:MAX_LOCATION_CHARS] + "..."
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown argument"
        problems.append(f"{location}: {message}")
    if len(items) > MAX_DESCRIBED_PROBLEMS:
        problems.append(f"and {len(items) - MAX_DESCRIBED_PROBLEMS} more problems")
    return f"Invalid arguments for tool {tool_name}: " + "; ".join(problems)


# A str text block at least this long that is also a field of structuredContent is encoded once (below
# it, encoding the text twice costs less than looking for it).
SHARED_TEXT_MIN_CHARS = 4096


def call_result(output: BaseModel) -> dict[str, Any]:
    """The ``tools/call`` result of a tool's output: its text block, its ``structuredContent``.

    Each text is escaped and encoded once: an :class:`EncodedText` field goes in as its encoding
    (``orjson.Fragment``), and a text block that is one of the fields (a file's content, a page's
    text) shares that field's encoding instead of being encoded a second time. The JSON is the same
    bytes as encoding every text where it stands. Raises what encoding raises (``TypeError``,
    ``ValueError``) for a text that is not valid Unicode.
    """
    encoded = _encoded_fields(output)
    if encoded:
        structured = _with_fragments(output, encoded)
    else:
        structured = output.__pydantic_serializer__.to_python(output, mode="json", by_alias=True)
    text = text_of(output, structured)
    if isinstance(text, EncodedText):
        return _result(orjson.Fragment(text.json), structured)
    if len(text) >= SHARED_TEXT_MIN_CHARS:
        for key, value in structured.items():
            if value is text:
                fragment = orjson.Fragment(orjson.dumps(text))
                return _result(fragment, {**structured, key: fragment})
    return _result(text, structured)


def _encoded_fields(output: BaseModel) -> dict[str, EncodedText]:
    return {
        name: value
        for name in _encoded_field_names(type(output))
        if isinstance(value := getattr(output, name), EncodedText)
    }


@functools.cache
def _encoded_field_names(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields declared as :class:`EncodedText` (looked up once per model, not per call)."""
    return tuple(name for name, info in model.model_fields.items() if info.annotation is EncodedText)


def _with_fragments(output: BaseModel, encoded: dict[str, EncodedText]) -> dict[str, Any]:
    """structuredContent with the encoded fields as fragments, in the fields' own order."""
    others = output.__pydantic_serializer__.to_python(
        output, mode="json", by_alias=True, exclude=set(encoded)
    )
    structured: dict[str, Any] = {}
    for name, info in type(output).model_fields.items():
        key = info.serialization_alias or info.alias or name
        if name in encoded:
            structured[key] = orjson.Fragment(encoded[name].json)
        elif key in others:
            structured[key] = others.pop(key)
    structured.update(others)  # computed fields, which come after the fields
    return structured


def _result(text: str | orjson.Fragment, structured: dict[str, Any]) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "structuredContent": structured, "isError": False}


def text_of(output: BaseModel, structured: dict[str, Any]) -> str | EncodedText:
    """The text block of a result: the model's own :meth:`ToolOutput.mcp_text`, else ``structured``
    (the result's ``structuredContent``) as indented JSON."""
    if isinstance(output, ToolOutput) and type(output).mcp_text is not ToolOutput.mcp_text:
        return output.mcp_text()
    return json_text(structured)


def json_text(structured: dict[str, Any]) -> str:
    """The default text block: the structured result as indented JSON."""
    return orjson.dumps(structured, option=orjson.OPT_INDENT_2).decode()
