"""The official MCP Python SDK (what LiteLLM and Open WebUI embed) against a libmcp service."""

from __future__ import annotations

from typing import Any

import mcp_types
from mcp import Client, ClientSession
from mcp.client.sse import sse_client

from libmcp import Service, ServiceSettings, ToolOutput


async def all_tools(client: Any) -> list[Any]:
    """Every tool, following nextCursor (the demo service pages two tools at a time)."""
    tools, cursor = [], None
    while True:
        if isinstance(client, ClientSession):
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await client.list_tools(params=params)
        else:
            page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools


async def test_auto_mode_lands_on_the_stateless_revision(demo):
    url, _ = demo
    async with Client(f"{url}/mcp", mode="auto") as client:
        assert client.session.protocol_version == "2026-07-28"
        tools = await all_tools(client)
        result = await client.call_tool("echo", {"text": "ab", "times": 2})
    assert [tool.name for tool in tools] == ["echo", "noop", "sleep", "fail", "crash"]
    assert result.is_error is False
    assert result.structured_content == {"text": "abab", "greeting": "hello"}


async def test_legacy_mode_negotiates_the_newest_handshake_revision(demo):
    url, _ = demo
    async with Client(f"{url}/mcp", mode="legacy") as client:
        assert client.session.protocol_version == "2025-11-25"
        result = await client.call_tool("echo", {"text": "x"})
    assert result.structured_content == {"text": "x", "greeting": "hello"}


async def test_sse_transport_initializes_lists_and_calls(demo):
    url, server = demo
    async with sse_client(f"{url}/sse") as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        assert server.metrics.sse_sessions._value.get() == 1
        tools = await all_tools(session)
        result = await session.call_tool("echo", {"text": "over sse"})
    assert initialized.server_info.name == "demo"
    assert len(tools) == 5
    assert result.structured_content["text"] == "over sse"


async def test_tool_schemas_reach_the_client_with_annotations(demo):
    url, _ = demo
    async with Client(f"{url}/mcp", mode="auto") as client:
        tools = {tool.name: tool for tool in await all_tools(client)}
    echo = tools["echo"]
    assert echo.input_schema["properties"]["times"]["maximum"] == 10
    assert echo.input_schema["additionalProperties"] is False
    assert echo.output_schema["required"] == ["text", "greeting"]
    assert echo.annotations.read_only_hint is True
    assert echo.annotations.idempotent_hint is True
    assert echo.title == "Echo"


async def test_validation_errors_and_tool_errors_are_results_a_model_can_read(demo):
    url, _ = demo
    async with Client(f"{url}/mcp", mode="auto") as client:
        missing = await client.call_tool("echo", {})
        too_many = await client.call_tool("echo", {"text": "a", "times": 99})
        unknown_arg = await client.call_tool("echo", {"text": "a", "colour": "red"})
        deliberate = await client.call_tool("fail", {"reason": "disk is full"})
    assert missing.is_error and "text: Field required" in missing.content[0].text
    assert too_many.is_error and "times: Input should be less than or equal to 10" in too_many.content[0].text
    assert unknown_arg.is_error and "colour: unknown argument" in unknown_arg.content[0].text
    assert deliberate.is_error and deliberate.content[0].text == "disk is full"


class ModeSettings(ServiceSettings):
    demo_mode: str = "read-only"


class Done(ToolOutput):
    pass


async def test_annotations_can_follow_the_deployment_settings(serve_service):
    modal = Service("modal", version="1", settings_class=ModeSettings)

    @modal.tool(read_only=False, hints=lambda settings: {"read_only": settings.demo_mode == "read-only"})
    async def run() -> Done:
        """Run something that writes only in read-write mode."""
        return Done()

    for mode, expected in (("read-only", True), ("read-write", False)):
        url, _ = serve_service(modal, ModeSettings(demo_mode=mode))
        async with Client(f"{url}/mcp", mode="auto") as client:
            (tool,) = (await client.list_tools()).tools
        assert tool.annotations.read_only_hint is expected


def test_a_text_method_on_a_result_is_refused_because_mcp_text_is_the_hook():
    import pytest

    with pytest.raises(TypeError, match="override mcp_text"):

        class Wrong(ToolOutput):
            def text(self) -> str:
                return "never used"
