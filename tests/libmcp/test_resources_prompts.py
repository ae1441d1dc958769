"""Resources, templates, prompts and completions over /rpc, /mcp (both eras), with their limits, errors
and capabilities, served from the conformance fixture (libmcp.testing.conformance_server)."""

from __future__ import annotations

import base64

import pytest
from pydantic import BaseModel

from libmcp import PromptResult, Server, Service, TextResource, ToolContext
from libmcp.completions import CompletionRequest
from libmcp.testing.conformance_server import RED_PIXEL_PNG, service
from tests.libmcp.conftest import modern_post, rpc


class Args(BaseModel):
    a: str


class Vars(BaseModel):
    other: str


@pytest.fixture
def fixture_url(serve_service):
    url, _ = serve_service(service, list_page_size=2, max_uri_chars=64)
    return url


def result(url: str, method: str, params: dict | None = None) -> dict:
    body = rpc(url, method, params).json()
    assert "error" not in body, body
    return body["result"]


def error(url: str, method: str, params: dict | None = None) -> dict:
    return rpc(url, method, params).json()["error"]


def test_capabilities_name_what_the_service_has(fixture_url):
    capabilities = result(fixture_url, "initialize", {"protocolVersion": "2025-11-25"})["capabilities"]
    assert capabilities == {
        "tools": {"listChanged": False},
        "resources": {"listChanged": False, "subscribe": False},
        "prompts": {"listChanged": False},
        "completions": {},
    }


def test_resources_list_pages_by_list_page_size(fixture_url):
    first = result(fixture_url, "resources/list")
    second = result(fixture_url, "resources/list", {"cursor": first["nextCursor"]})
    assert [entry["uri"] for entry in first["resources"] + second["resources"]] == [
        "test://static-text",
        "test://static-binary",
        "test://watched-resource",
    ]
    assert "nextCursor" not in second
    assert first["resources"][0] == {
        "uri": "test://static-text",
        "name": "static-text",
        "title": "Static-text",
        "description": "A static text resource.",
        "mimeType": "text/plain",
    }


def test_a_cursor_of_another_list_is_refused(fixture_url):
    cursor = result(fixture_url, "resources/list")["nextCursor"]
    assert error(fixture_url, "prompts/list", {"cursor": cursor})["code"] == -32602


def test_read_text_and_blob(fixture_url):
    text = result(fixture_url, "resources/read", {"uri": "test://static-text"})["contents"]
    assert text == [
        {
            "uri": "test://static-text",
            "mimeType": "text/plain",
            "text": "This is the content of the static text resource.",
        }
    ]
    blob = result(fixture_url, "resources/read", {"uri": "test://static-binary"})["contents"][0]
    assert base64.b64decode(blob["blob"]) == RED_PIXEL_PNG
    assert blob["mimeType"] == "image/png"


def test_template_read_substitutes_variables(fixture_url):
    templates = result(fixture_url, "resources/templates/list")["resourceTemplates"]
    assert [entry["uriTemplate"] for entry in templates] == ["test://template/{id}/data"]
    contents = result(fixture_url, "resources/read", {"uri": "test://template/12%203/data"})["contents"]
    assert contents[0]["text"] == '{"id":"12 3","templateTest":true,"data":"Data for ID: 12 3"}'


def test_unknown_resource_is_32002(fixture_url):
    failure = error(fixture_url, "resources/read", {"uri": "test://nothing"})
    assert failure["code"] == -32002
    assert failure["message"] == "Resource not found: test://nothing"


def test_uri_over_max_uri_chars_is_refused_naming_the_setting(fixture_url):
    failure = error(fixture_url, "resources/read", {"uri": "test://" + "a" * 60})
    assert failure["code"] == -32602
    assert "over the limit of 64 (MCP_MAX_URI_CHARS)" in failure["message"]


def test_blob_over_the_reply_budget_is_refused_before_encoding(serve_service):
    big = Service("big", version="1")

    @big.resource(uri="big://blob")
    async def blob() -> TextResource:
        """Too large to send."""
        return TextResource("x" * 10_000)

    url, _ = serve_service(big, max_reply_bytes=4096)
    failure = error(url, "resources/read", {"uri": "big://blob"})
    assert "MCP_MAX_REPLY_BYTES" in failure["message"]


def test_prompts_list_has_typed_arguments(fixture_url):
    prompts = result(fixture_url, "prompts/list")["prompts"]
    prompts += result(
        fixture_url, "prompts/list", {"cursor": result(fixture_url, "prompts/list")["nextCursor"]}
    )["prompts"]
    with_arguments = next(p for p in prompts if p["name"] == "test_prompt_with_arguments")
    assert with_arguments["arguments"] == [
        {"name": "arg1", "description": "First test argument", "required": True},
        {"name": "arg2", "description": "Second test argument", "required": True},
    ]


def test_prompt_get_renders_text_image_and_resource(fixture_url):
    args = {"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}
    assert result(fixture_url, "prompts/get", args)["messages"] == [
        {"role": "user", "content": {"type": "text", "text": "Prompt with arguments: arg1='a', arg2='b'"}}
    ]
    image = result(fixture_url, "prompts/get", {"name": "test_prompt_with_image"})["messages"][0]["content"]
    assert image["type"] == "image" and image["mimeType"] == "image/png"
    embedded = result(
        fixture_url,
        "prompts/get",
        {"name": "test_prompt_with_embedded_resource", "arguments": {"resourceUri": "test://x"}},
    )["messages"][0]["content"]
    assert embedded["resource"]["uri"] == "test://x"


def test_prompt_with_a_missing_argument_names_it(fixture_url):
    failure = error(
        fixture_url, "prompts/get", {"name": "test_prompt_with_arguments", "arguments": {"arg1": "a"}}
    )
    assert failure["code"] == -32602
    assert "arg2: Field required" in failure["message"]


def test_unknown_prompt_is_invalid_params(fixture_url):
    assert (
        error(fixture_url, "prompts/get", {"name": "nope"})["message"]
        == "Invalid params: unknown prompt 'nope'"
    )


def test_completion_of_prompt_argument_and_template_variable(fixture_url):
    prompt_ref = {"type": "ref/prompt", "name": "test_prompt_with_arguments"}
    completion = result(
        fixture_url, "completion/complete", {"ref": prompt_ref, "argument": {"name": "arg1", "value": "par"}}
    )
    assert completion == {"completion": {"values": ["paris", "park", "party"], "total": 3, "hasMore": False}}
    template_ref = {"type": "ref/resource", "uri": "test://template/{id}/data"}
    completion = result(
        fixture_url, "completion/complete", {"ref": template_ref, "argument": {"name": "id", "value": "12"}}
    )
    assert completion["completion"]["values"] == ["123", "124"]


def test_completion_value_over_max_uri_chars_is_refused(fixture_url):
    prompt_ref = {"type": "ref/prompt", "name": "test_prompt_with_arguments"}
    failure = error(
        fixture_url,
        "completion/complete",
        {"ref": prompt_ref, "argument": {"name": "arg1", "value": "p" * 65}},
    )
    assert "MCP_MAX_URI_CHARS" in failure["message"]


def test_modern_revision_marks_cacheable_results(fixture_url):
    listed = modern_post(fixture_url, "resources/list").json()["result"]
    assert (listed["ttlMs"], listed["cacheScope"], listed["resultType"]) == (0, "private", "complete")
    read = modern_post(
        fixture_url,
        "resources/read",
        {"uri": "test://static-text"},
        headers={"Mcp-Name": "test://static-text"},
    ).json()["result"]
    assert (read["ttlMs"], read["cacheScope"]) == (0, "private")
    completed = modern_post(
        fixture_url,
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "test_simple_prompt"}, "argument": {"name": "x", "value": ""}},
    ).json()["result"]
    assert "ttlMs" not in completed


def test_a_completion_for_an_unknown_argument_fails_at_start():
    broken = Service("broken", version="1")

    @broken.prompt()
    async def p(args: Args) -> PromptResult:
        """A prompt."""
        return PromptResult.user(args.a)

    @broken.completion(prompt="p", argument="b")
    async def c(request: CompletionRequest, ctx: ToolContext) -> list[str]:
        return []

    with pytest.raises(ValueError, match="prompt p has no argument 'b'"):
        Server(broken)


def test_template_variables_must_be_the_model_fields():
    bad = Service("bad", version="1")

    with pytest.raises(TypeError, match="must be the same"):

        @bad.resource_template("x://{id}")
        async def t(variables: Vars) -> TextResource:
            """A template."""
            return TextResource("")
