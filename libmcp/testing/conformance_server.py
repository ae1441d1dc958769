"""The conformance fixture: the tools, resources and prompts the official suite's server scenarios
expect (npm ``@modelcontextprotocol/conformance``), written on libmcp's public API.

``python -m libmcp.testing.conformance_server --port N`` serves it on loopback (``--host`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json

from pydantic import BaseModel, Field

from libmcp import (
    CompletionRequest,
    EmbeddedResource,
    ImageContent,
    PromptMessage,
    PromptResult,
    Server,
    ServerSettings,
    Service,
    TextContent,
    TextResource,
    ToolContext,
    ToolError,
    ToolOutput,
    serve,
)
from libmcp.content import TextResourceContents
from libmcp.resources import BlobResource

# A 1x1 red PNG.
RED_PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

service: Service = Service(
    "conformance",
    version="1.0.0",
    title="MCP conformance fixture",
    instructions="Serves what the official conformance suite's server scenarios call.",
)


class Said(ToolOutput):
    message: str

    def mcp_text(self) -> str:
        return self.message


@service.tool(read_only=True)
async def test_simple_text() -> Said:
    """Return a simple text response."""
    return Said(message="This is a simple text response for testing.")


@service.tool(read_only=True)
async def test_error_handling() -> Said:
    """Always fail, reporting the failure as an isError result."""
    raise ToolError("This tool intentionally returns an error for testing")


@service.tool(read_only=True)
async def test_tool_with_progress(ctx: ToolContext) -> Said:
    """Report progress 0, 50 and 100 of 100, 50 ms apart (where the transport has a stream)."""
    for step in (0, 50, 100):
        ctx.report_progress(step, 100)
        if step < 100:
            await asyncio.sleep(0.05)
    return Said(message="Progress reported: 0, 50 and 100 of 100.")


@service.resource(uri="test://static-text", name="static-text", mime_type="text/plain")
async def static_text() -> TextResource:
    """A static text resource."""
    return TextResource("This is the content of the static text resource.")


@service.resource(uri="test://static-binary", name="static-binary", mime_type="image/png")
async def static_binary() -> BlobResource:
    """A static binary resource (a 1x1 PNG)."""
    return BlobResource(RED_PIXEL_PNG)


@service.resource(uri="test://watched-resource", name="watched-resource", mime_type="text/plain")
async def watched_resource() -> TextResource:
    """A resource clients may want to watch."""
    return TextResource("Watched resource content.")


class TemplateVariables(BaseModel):
    id: str


@service.resource_template("test://template/{id}/data", name="template-data", mime_type="application/json")
async def template_data(variables: TemplateVariables) -> TextResource:
    """Data for one id, substituted from the URI."""
    payload = {"id": variables.id, "templateTest": True, "data": f"Data for ID: {variables.id}"}
    return TextResource(json.dumps(payload, separators=(",", ":")))


@service.prompt()
async def test_simple_prompt() -> PromptResult:
    """A prompt without arguments."""
    return PromptResult.user("This is a simple prompt for testing.")


class TwoArguments(BaseModel):
    arg1: str = Field(description="First test argument")
    arg2: str = Field(description="Second test argument")


@service.prompt()
async def test_prompt_with_arguments(args: TwoArguments) -> PromptResult:
    """A prompt with two required arguments."""
    return PromptResult.user(f"Prompt with arguments: arg1='{args.arg1}', arg2='{args.arg2}'")


class ResourceArgument(BaseModel):
    resourceUri: str = Field(description="URI of the resource to embed")


@service.prompt()
async def test_prompt_with_embedded_resource(args: ResourceArgument) -> PromptResult:
    """A prompt that embeds a resource."""
    embedded = TextResourceContents(
        uri=args.resourceUri, mimeType="text/plain", text="Embedded resource content for testing."
    )
    return PromptResult(
        messages=[
            PromptMessage(role="user", content=EmbeddedResource(resource=embedded)),
            PromptMessage(
                role="user", content=TextContent(text="Please process the embedded resource above.")
            ),
        ]
    )


@service.prompt()
async def test_prompt_with_image() -> PromptResult:
    """A prompt with an image."""
    return PromptResult(
        messages=[
            PromptMessage(role="user", content=ImageContent.of(RED_PIXEL_PNG, "image/png")),
            PromptMessage(role="user", content=TextContent(text="Please analyze the image above.")),
        ]
    )


@service.completion(prompt="test_prompt_with_arguments", argument="arg1")
async def complete_arg1(request: CompletionRequest, ctx: ToolContext) -> list[str]:
    """Words that start with what was typed."""
    return [word for word in ("paris", "park", "party", "test", "testing") if word.startswith(request.value)]


@service.completion(template="test://template/{id}/data", argument="id")
async def complete_id(request: CompletionRequest, ctx: ToolContext) -> list[str]:
    """Known ids that start with what was typed."""
    return [item for item in ("123", "124", "200") if item.startswith(request.value)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    options = parser.parse_args()
    return serve(
        Server(service, server_settings=ServerSettings.model_validate({})),
        host=options.host,
        port=options.port,
    )


if __name__ == "__main__":
    raise SystemExit(main())
