"""Completions: suggestions for a prompt's argument or a resource template's variable.

::

    @service.completion(prompt="explain_query", argument="database")
    async def complete_database(request: CompletionRequest, ctx: Context) -> list[str]:
        \"\"\"Configured database names.\"\"\"
        return [name for name in ctx.settings.databases if name.startswith(request.value)]

libmcp sends at most :data:`MAX_COMPLETION_VALUES` values (the spec's cap) with ``total`` and
``hasMore``; the target and its argument are checked when the server is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from libmcp.tools import ToolContext

# The spec's cap on completion values in one answer.
MAX_COMPLETION_VALUES = 100

RefType = Literal["ref/prompt", "ref/resource"]


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """The argument being completed, what the user typed so far, and the arguments already given."""

    argument: str
    value: str
    arguments: dict[str, str] = field(default_factory=dict)


CompletionFunction = Callable[[CompletionRequest, ToolContext[Any, Any]], Awaitable[list[str]]]


@dataclass(slots=True)
class Completer:
    ref_type: RefType
    # The prompt's name or the template's URI template.
    target: str
    argument: str
    function: CompletionFunction

    @property
    def key(self) -> tuple[RefType, str, str]:
        return (self.ref_type, self.target, self.argument)


def build_completer(
    function: CompletionFunction, *, prompt: str | None, template: str | None, argument: str
) -> Completer:
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"completion {function.__name__} must be an async function")
    if (prompt is None) == (template is None):
        raise ValueError(f"completion {function.__name__} names either a prompt or a template, not both")
    if len(inspect.signature(function).parameters) != 2:
        raise TypeError(
            f"completion {function.__name__} takes (request: CompletionRequest, ctx: ToolContext)"
        )
    if prompt is not None:
        return Completer("ref/prompt", prompt, argument, function)
    assert template is not None
    return Completer("ref/resource", template, argument, function)


def completion_result(values: list[str]) -> dict[str, Any]:
    """The ``completion/complete`` result of a completer's values (cut to the spec's 100)."""
    return {
        "completion": {
            "values": values[:MAX_COMPLETION_VALUES],
            "total": len(values),
            "hasMore": len(values) > MAX_COMPLETION_VALUES,
        }
    }
