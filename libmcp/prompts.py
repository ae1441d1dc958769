"""Prompts: message templates a service declares, with typed arguments, and what getting one returns.

A prompt function takes an optional pydantic model (its arguments: MCP sends them as strings, and the
model validates and converts them) and an optional context, and returns a :class:`PromptResult`::

    class ExplainArgs(BaseModel):
        query: str = Field(description="the SQL to explain")

    @service.prompt(title="Explain a slow query")
    async def explain_query(args: ExplainArgs) -> PromptResult:
        \"\"\"Ask for an explanation of a query's plan.\"\"\"
        return PromptResult.user(f"Explain: {args.query}")
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field

from libmcp.content import ContentBlock, TextContent
from libmcp.tools import ToolContext, call_declared, typed_parameters

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class PromptMessage(BaseModel):
    """One message of a prompt: who says it and one content block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    content: ContentBlock


class PromptResult(BaseModel):
    """What ``prompts/get`` answers: the messages and, optionally, a description of this rendering."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: list[PromptMessage] = Field(min_length=1)
    description: str | None = None

    @classmethod
    def user(cls, text: str, description: str | None = None) -> PromptResult:
        """A prompt of one user text message."""
        return cls(
            messages=[PromptMessage(role="user", content=TextContent(text=text))], description=description
        )


PromptFunction = Callable[..., Awaitable[PromptResult]]


@dataclass(slots=True)
class Prompt:
    name: str
    title: str
    description: str
    function: PromptFunction
    arguments_model: type[BaseModel] | None
    takes_context: bool

    def argument_names(self) -> tuple[str, ...]:
        return tuple(self.arguments_model.model_fields) if self.arguments_model is not None else ()

    def definition(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "title": self.title, "description": self.description}
        if self.arguments_model is not None:
            entry["arguments"] = [
                {
                    "name": info.alias or name,
                    **({"description": info.description} if info.description else {}),
                    "required": info.is_required(),
                }
                for name, info in self.arguments_model.model_fields.items()
            ]
        return entry

    def render(self, arguments: BaseModel | None, context: ToolContext[Any, Any] | None) -> Awaitable[Any]:
        return call_declared(
            self.function, arguments, context, self.arguments_model is not None, self.takes_context
        )


def build_prompt(function: PromptFunction, *, name: str | None, title: str | None) -> Prompt:
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"prompt {function.__name__} must be an async function")
    hints = get_type_hints(function)
    if hints.get("return") is not PromptResult:
        raise TypeError(f"prompt {function.__name__} must return PromptResult")
    model, takes_context = typed_parameters(function, "prompt", hints)
    prompt_name = name or function.__name__
    if not _NAME.fullmatch(prompt_name):
        raise ValueError(f"prompt name {prompt_name!r} must be 1 to 64 letters, digits, '_', '.' or '-'")
    description = inspect.cleandoc(function.__doc__ or "").strip()
    if not description:
        raise ValueError(f"prompt {prompt_name} needs a docstring: it is the description clients show")
    return Prompt(
        name=prompt_name,
        title=title or prompt_name.replace("_", " ").capitalize(),
        description=description,
        function=function,
        arguments_model=model,
        takes_context=takes_context,
    )
