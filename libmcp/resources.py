"""Resources: fixed URIs and URI templates a service declares, what reading one returns, and the lookup.

A resource function returns :class:`TextResource` or :class:`BlobResource`; a template's function
takes a pydantic model whose fields are the template's variables::

    class FileVars(BaseModel):
        path: str

    @service.resource_template("file://{+path}", name="file", mime_type="text/plain")
    async def read_file(variables: FileVars, ctx: Context) -> TextResource | BlobResource:
        \"\"\"A file under one of the roots.\"\"\"

Templates are RFC 6570 level 1 (``{name}``: one path segment) and level 2 reserved expansion
(``{+name}``: may contain ``/``); values are percent-decoded before validation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel

from libmcp.tools import ToolContext, call_declared, typed_parameters

# A resource or template name: what clients show and completions refer to.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_EXPRESSION = re.compile(r"\{(\+?)([A-Za-z_][A-Za-z0-9_]*)\}")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True, slots=True)
class TextResource:
    """A resource's content as text; ``mime_type`` overrides the declared one."""

    text: str
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class BlobResource:
    """A resource's content as bytes (sent as base64); ``mime_type`` overrides the declared one."""

    data: bytes
    mime_type: str | None = None


ResourceBody = TextResource | BlobResource
ResourceFunction = Callable[..., Awaitable[ResourceBody]]


class ResourceNotFound(Exception):
    """Raised by a resource function (or the lookup) for a URI that names nothing: -32002."""

    def __init__(self, uri: str, reason: str = "") -> None:
        super().__init__(uri)
        self.uri = uri
        self.reason = reason


@dataclass(slots=True)
class Resource:
    """A resource at one fixed URI."""

    uri: str
    name: str
    title: str
    description: str
    mime_type: str | None
    function: ResourceFunction
    takes_context: bool

    def definition(self) -> dict[str, Any]:
        entry = {"uri": self.uri, "name": self.name, "title": self.title, "description": self.description}
        if self.mime_type:
            entry["mimeType"] = self.mime_type
        return entry

    def read(self, context: ToolContext[Any, Any] | None) -> Awaitable[ResourceBody]:
        return call_declared(self.function, None, context, False, self.takes_context)


@dataclass(slots=True)
class ResourceTemplate:
    """Resources whose URIs match one template; the variables are the fields of ``variables_model``."""

    uri_template: str
    name: str
    title: str
    description: str
    mime_type: str | None
    function: ResourceFunction
    variables_model: type[BaseModel]
    takes_context: bool
    variables: tuple[str, ...] = ()
    pattern: re.Pattern[str] = field(default_factory=lambda: re.compile(""))

    def definition(self) -> dict[str, Any]:
        entry = {
            "uriTemplate": self.uri_template,
            "name": self.name,
            "title": self.title,
            "description": self.description,
        }
        if self.mime_type:
            entry["mimeType"] = self.mime_type
        return entry

    def match(self, uri: str) -> dict[str, str] | None:
        """The template's variables in ``uri`` (percent-decoded), or ``None`` when it does not match."""
        found = self.pattern.fullmatch(uri)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}

    def read(self, variables: BaseModel, context: ToolContext[Any, Any] | None) -> Awaitable[ResourceBody]:
        return call_declared(self.function, variables, context, True, self.takes_context)


def _describe(function: Callable[..., Any], kind: str) -> str:
    description = inspect.cleandoc(function.__doc__ or "").strip()
    if not description:
        raise ValueError(f"{kind} {function.__name__} needs a docstring: it is the description clients show")
    return description


def _check_name(name: str, kind: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} must be 1 to 64 letters, digits, '_', '.' or '-'")
    return name


def build_resource(
    function: ResourceFunction, *, uri: str, name: str | None, title: str | None, mime_type: str | None
) -> Resource:
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"resource {function.__name__} must be an async function")
    if not _SCHEME.match(uri) or _EXPRESSION.search(uri):
        raise ValueError(
            f"resource {function.__name__}: {uri!r} must be an absolute URI without template variables "
            "(use resource_template for those)"
        )
    model, takes_context = typed_parameters(function, "resource")
    if model is not None:
        raise TypeError(f"resource {function.__name__} takes no model: only a template has variables")
    resource_name = _check_name(name or function.__name__, "resource")
    return Resource(
        uri=uri,
        name=resource_name,
        title=title or resource_name.replace("_", " ").capitalize(),
        description=_describe(function, "resource"),
        mime_type=mime_type,
        function=function,
        takes_context=takes_context,
    )


def build_template(
    function: ResourceFunction,
    *,
    uri_template: str,
    name: str | None,
    title: str | None,
    mime_type: str | None,
) -> ResourceTemplate:
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"resource template {function.__name__} must be an async function")
    where = f"resource template {function.__name__}"
    if not _SCHEME.match(uri_template):
        raise ValueError(f"{where}: {uri_template!r} must be an absolute URI template (a scheme first)")
    model, takes_context = typed_parameters(function, "resource template")
    if model is None:
        raise TypeError(f"{where} must take a model whose fields are the template's variables")
    pattern, variables = _compile(uri_template, where)
    if set(variables) != set(model.model_fields):
        raise TypeError(
            f"{where}: the template's variables {sorted(variables)} and the fields of "
            f"{model.__name__} {sorted(model.model_fields)} must be the same"
        )
    template_name = _check_name(name or function.__name__, "resource template")
    return ResourceTemplate(
        uri_template=uri_template,
        name=template_name,
        title=title or template_name.replace("_", " ").capitalize(),
        description=_describe(function, "resource template"),
        mime_type=mime_type,
        function=function,
        variables_model=model,
        takes_context=takes_context,
        variables=variables,
        pattern=pattern,
    )


def _compile(uri_template: str, where: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """The regular expression a template's URIs match, and its variables in order."""
    if re.search(r"\{(?![+]?[A-Za-z_][A-Za-z0-9_]*\})", uri_template) or "}" in _EXPRESSION.sub(
        "", uri_template
    ):
        raise ValueError(
            f"{where}: {uri_template!r} has an expression other than {{name}} or {{+name}} (RFC 6570 "
            "levels 1 and 2 are supported)"
        )
    parts: list[str] = []
    variables: list[str] = []
    position = 0
    for expression in _EXPRESSION.finditer(uri_template):
        parts.append(re.escape(uri_template[position : expression.start()]))
        reserved, variable = expression.groups()
        if variable in variables:
            raise ValueError(f"{where}: variable {variable!r} appears twice in {uri_template!r}")
        variables.append(variable)
        parts.append(f"(?P<{variable}>{'.+' if reserved else '[^/?#]+'})")
        position = expression.end()
    parts.append(re.escape(uri_template[position:]))
    if not variables:
        raise ValueError(f"{where}: {uri_template!r} has no variables: declare it with resource(uri=...)")
    return re.compile("".join(parts), re.DOTALL), tuple(variables)
