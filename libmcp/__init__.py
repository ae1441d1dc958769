"""libmcp: typed MCP tool services over HTTP (SSE, Streamable HTTP of every revision, plain JSON-RPC).

A service is a :class:`Service` with typed async tools (and, when it has backends, a typed lifespan
that yields their state: see :mod:`libmcp.service`)::

    service = Service("notes", version="1.0.0")

    class AddArgs(ToolInput):
        text: str

    class AddResult(ToolOutput):
        id: int

    @service.tool(title="Add a note", idempotent=False)
    async def add_note(args: AddArgs, ctx: ToolContext) -> AddResult:
        \"\"\"Store a note and return its id.\"\"\"
        ...

libmcp derives the schemas, validates, and serves it with :func:`serve` or :func:`create_app`.
"""

from libmcp.app import create_app
from libmcp.completions import CompletionRequest
from libmcp.config import CommaList, ServerSettings, ServiceSettings, SettingsError
from libmcp.content import AudioContent, EmbeddedResource, ImageContent, TextContent
from libmcp.prompts import PromptMessage, PromptResult
from libmcp.resources import BlobResource, ResourceNotFound, TextResource
from libmcp.runner import build_server, serve
from libmcp.server import Server
from libmcp.service import CheckContext, CheckResult, Service, StartupContext
from libmcp.tools import ToolContext, ToolError, ToolInput, ToolOutput

__all__ = [
    "AudioContent",
    "BlobResource",
    "CheckContext",
    "CheckResult",
    "CommaList",
    "CompletionRequest",
    "EmbeddedResource",
    "ImageContent",
    "PromptMessage",
    "PromptResult",
    "ResourceNotFound",
    "Server",
    "ServerSettings",
    "Service",
    "ServiceSettings",
    "SettingsError",
    "StartupContext",
    "TextContent",
    "TextResource",
    "ToolContext",
    "ToolError",
    "ToolInput",
    "ToolOutput",
    "build_server",
    "create_app",
    "serve",
]
