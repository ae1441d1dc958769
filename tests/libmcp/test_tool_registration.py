"""A tool definition libmcp cannot serve correctly is refused when it is registered, by a message that
names the tool and what is wrong with it, and leaves the service without that tool."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from libmcp import Service, ServiceSettings, ToolContext, ToolInput, ToolOutput


class Args(ToolInput):
    path: str


class OtherArgs(ToolInput):
    limit: int


class Result(ToolOutput):
    ok: bool


class Page(ToolOutput):
    text: str


class Plain(BaseModel):
    ok: bool


@dataclass(frozen=True)
class State:
    """A service's state, as its lifespan would yield it."""

    root: str


Context = ToolContext[ServiceSettings, State]


def refusal(function: Callable[..., Any], **options: Any) -> tuple[str, Service]:
    """Register ``function`` on a fresh service; the refusal's message, and the service it left."""
    service = Service("registration-test", version="0")
    with pytest.raises((TypeError, ValueError)) as caught:
        service.tool(**options)(function)
    return str(caught.value), service


# --- the function -------------------------------------------------------------------------------


def test_a_plain_function_is_refused_as_not_async() -> None:
    def read(args: Args) -> Result:
        """Read."""
        return Result(ok=True)

    message, service = refusal(read)
    assert message == "tool read must be an async function"
    assert service.tools == {}


@pytest.mark.parametrize(
    "returns",
    [None, dict, str, list[Result], Result | None],
    ids=["no annotation", "dict", "str", "list of models", "optional model"],
)
def test_a_result_that_is_not_one_pydantic_model_is_refused(returns: Any) -> None:
    async def read(args: Args):
        """Read."""

    if returns is not None:
        read.__annotations__["return"] = returns
    message, service = refusal(read)
    assert message == "tool read must return a pydantic model"
    assert service.tools == {}


def test_a_tool_output_method_named_text_is_refused_where_the_model_is_defined() -> None:
    with pytest.raises(TypeError) as caught:

        class Shown(ToolOutput):
            ok: bool

            def text(self) -> str:
                return "shown"

    assert str(caught.value) == "Shown.text() would never be called: override mcp_text() instead"


def test_a_result_field_named_text_is_not_the_hook_and_is_accepted() -> None:
    service = Service("registration-test", version="0")

    @service.tool()
    async def page() -> Page:
        """A page."""
        return Page(text="hello")

    assert service.tools["page"].definition["outputSchema"]["properties"]["text"]["type"] == "string"


# --- its parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "annotation"),
    [("path", str), ("limit", int), ("options", dict), ("context", object)],
)
def test_a_parameter_that_is_neither_a_model_nor_the_context_is_refused_by_name(
    parameter: str, annotation: type
) -> None:
    namespace: dict[str, Any] = {"Result": Result}
    exec(f"async def read({parameter}) -> Result:\n    'Read.'\n", namespace)
    read = namespace["read"]
    read.__annotations__[parameter] = annotation
    message, service = refusal(read)
    assert message == f"tool read: parameter {parameter!r} must be a model or ToolContext"
    assert service.tools == {}


def test_an_unannotated_parameter_is_refused_by_name() -> None:
    async def read(args) -> Result:
        """Read."""
        return Result(ok=True)

    message, _ = refusal(read)
    assert message == "tool read: parameter 'args' must be a model or ToolContext"


def test_a_second_arguments_model_is_refused() -> None:
    async def read(args: Args, more: OtherArgs) -> Result:
        """Read."""
        return Result(ok=True)

    message, service = refusal(read)
    assert (
        message
        == "tool read: parameter 'more' is a second model: a tool's arguments are the fields of one model"
    )
    assert service.tools == {}


def test_a_second_context_is_refused() -> None:
    async def read(ctx: ToolContext, again: ToolContext) -> Result:
        """Read."""
        return Result(ok=True)

    message, _ = refusal(read)
    assert message == "tool read: parameter 'again' is a second ToolContext: a tool takes at most one"


def test_a_second_context_is_refused_when_parametrized_too() -> None:
    async def read(ctx: Context, again: ToolContext[ServiceSettings, State]) -> Result:
        """Read."""
        return Result(ok=True)

    message, _ = refusal(read)
    assert message == "tool read: parameter 'again' is a second ToolContext: a tool takes at most one"


def test_the_arguments_model_after_the_context_is_refused_since_both_are_passed_by_position() -> None:
    async def read(ctx: ToolContext, args: Args) -> Result:
        """Read."""
        return Result(ok=True)

    message, service = refusal(read)
    assert message == "tool read: parameter 'args': the arguments model must come before the ToolContext"
    assert service.tools == {}


def test_a_keyword_only_parameter_is_refused() -> None:
    async def read(*, args: Args) -> Result:
        """Read."""
        return Result(ok=True)

    message, _ = refusal(read)
    assert message == (
        "tool read: parameter 'args' must be a plain positional parameter (no *, ** or keyword-only)"
    )


@pytest.mark.parametrize("star", ["*", "**"])
def test_star_parameters_are_refused(star: str) -> None:
    namespace: dict[str, Any] = {"Args": Args, "Result": Result}
    exec(f"async def read({star}rest: Args) -> Result:\n    'Read.'\n", namespace)
    message, _ = refusal(namespace["read"])
    assert message == (
        "tool read: parameter 'rest' must be a plain positional parameter (no *, ** or keyword-only)"
    )


@pytest.mark.parametrize(
    "signature",
    [
        "()",
        "(args: Args)",
        "(ctx: ToolContext)",
        "(args: Args, ctx: ToolContext)",
        "(ctx: ToolContext[ServiceSettings, State])",
        "(args: Args, ctx: Context)",
    ],
)
def test_every_shape_libmcp_can_call_is_accepted(signature: str) -> None:
    namespace: dict[str, Any] = {
        "Args": Args,
        "Result": Result,
        "ToolContext": ToolContext,
        "ServiceSettings": ServiceSettings,
        "State": State,
        "Context": Context,
    }
    exec(f"async def read{signature} -> Result:\n    'Read.'\n    return Result(ok=True)\n", namespace)
    service = Service("registration-test", version="0")
    service.tool()(namespace["read"])
    tool = service.tools["read"]
    assert (tool.takes_input, tool.takes_context) == ("args" in signature, "ctx" in signature)


def test_a_plain_base_model_result_is_accepted() -> None:
    service = Service("registration-test", version="0")

    @service.tool()
    async def plain() -> Plain:
        """Plain."""
        return Plain(ok=True)

    assert service.tools["plain"].output_model is Plain


# --- its name and description ---------------------------------------------------------------------


async def _read(args: Args) -> Result:
    """Read a file."""
    return Result(ok=True)


@pytest.mark.parametrize(
    "name",
    ["ReadFile", "read-file", "read file", "read.file", "_", "42", "café", "x²", "r" * 49],
    ids=[
        "camel",
        "dash",
        "space",
        "dot",
        "underscore only",
        "digits only",
        "accent",
        "superscript",
        "49 chars",
    ],
)
def test_a_name_that_is_not_short_ascii_snake_case_is_refused(name: str) -> None:
    message, service = refusal(_read, name=name)
    assert message == f"tool name {name!r} must be short snake_case (48 characters at most)"
    assert service.tools == {}


@pytest.mark.parametrize("name", ["read_file", "get_2fa_code", "r" * 48, "_read"])
def test_short_snake_case_names_are_accepted(name: str) -> None:
    service = Service("registration-test", version="0")
    service.tool(name=name)(_read)
    assert list(service.tools) == [name]
    assert re.fullmatch(r"[a-z0-9_]{1,48}", service.tools[name].definition["name"])


def test_the_function_name_is_checked_when_no_name_is_given() -> None:
    async def readFile(args: Args) -> Result:
        """Read."""
        return Result(ok=True)

    message, _ = refusal(readFile)
    assert message == "tool name 'readFile' must be short snake_case (48 characters at most)"


@pytest.mark.parametrize("docstring", [None, "", "   \n\t  "], ids=["none", "empty", "blank"])
def test_a_tool_without_a_docstring_is_refused(docstring: str | None) -> None:
    async def read(args: Args) -> Result:
        return Result(ok=True)

    read.__doc__ = docstring
    message, service = refusal(read)
    assert message == "tool read needs a docstring: it is the description models read"
    assert service.tools == {}


# --- its service ---------------------------------------------------------------------------------


def test_a_second_tool_with_the_same_name_is_refused_and_the_first_stays() -> None:
    service = Service("files", version="0")
    service.tool(name="read")(_read)

    async def read(args: OtherArgs) -> Result:
        """Another read."""
        return Result(ok=False)

    with pytest.raises(ValueError) as caught:
        service.tool()(read)
    assert str(caught.value) == "tool read is registered twice in service files"
    assert service.tools["read"].function is _read
