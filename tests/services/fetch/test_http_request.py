"""http_request against a real loopback server that echoes what it received, and through the official SDK."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from mcp import Client

from fleet.registry import load_registry
from harness.pageserver import PageServer, Received, Reply
from libmcp.config import load_settings
from services.fetch.settings import FetchSettings
from tests.services.fetch.conftest import FetchService, running_fetch_service, text_of


def _echo(request: Received) -> Reply:
    payload = {"method": request.method, "headers": request.headers, "body": request.body.decode()}
    return Reply(
        headers={"Content-Type": "application/json", "X-Echo": "yes"}, body=json.dumps(payload).encode()
    )


@pytest.fixture(scope="module")
def echo() -> Iterator[PageServer]:
    with PageServer("127.0.0.1").running() as server:
        server.routes["/echo"] = _echo
        server.routes["/see-other"] = Reply(303, {"Location": "/echo"})
        server.routes["/keep"] = Reply(307, {"Location": "/echo"})
        server.routes["/gone"] = Reply(404, {"Content-Type": "text/plain"}, b"no such thing")
        yield server


@pytest.fixture(scope="module")
def writer() -> Iterator[FetchService]:
    with running_fetch_service(allowed_hosts=["127.0.0.1"], allow_write_methods=True) as service:
        yield service


@pytest.fixture(scope="module")
def reader() -> Iterator[FetchService]:
    with running_fetch_service(allowed_hosts=["127.0.0.1"]) as service:
        yield service


async def test_get_sends_headers_and_returns_status_headers_and_body(
    echo: PageServer, reader: FetchService
) -> None:
    result = await reader.call(
        "http_request",
        {"url": echo.url("/echo"), "headers": {"Accept": "application/json", "X-Trace": "abc"}},
    )
    out = result["structuredContent"]
    received = json.loads(out["body"])
    assert (out["status"], out["reason"], out["method"], out["kind"]) == (200, "OK", "GET", "json")
    assert received["headers"]["x-trace"] == "abc"
    assert received["headers"]["accept"] == "application/json"
    assert out["headers"]["x-echo"] == "yes"
    assert text_of(result).startswith("HTTP 200 OK\nURL: " + echo.url("/echo"))
    assert '"method": "GET"' in text_of(result)


async def test_write_methods_are_refused_by_default(echo: PageServer, reader: FetchService) -> None:
    before = len(echo.requests)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        result = await reader.call("http_request", {"url": echo.url("/echo"), "method": method, "body": "x"})
        assert result["isError"] is True
        assert text_of(result).startswith(f"Method {method} is refused")
    assert len(echo.requests) == before


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_write_methods_send_their_body_when_allowed(
    method: str, echo: PageServer, writer: FetchService
) -> None:
    result = await writer.call(
        "http_request", {"url": echo.url("/echo"), "method": method, "body": "hello=1"}
    )
    received = json.loads(result["structuredContent"]["body"])
    assert (received["method"], received["body"]) == (method, "hello=1")


async def test_a_json_body_is_serialised_with_its_content_type(
    echo: PageServer, writer: FetchService
) -> None:
    result = await writer.call(
        "http_request", {"url": echo.url("/echo"), "method": "POST", "json": {"a": [1, 2]}}
    )
    received = json.loads(result["structuredContent"]["body"])
    assert json.loads(received["body"]) == {"a": [1, 2]}
    assert received["headers"]["content-type"] == "application/json"


async def test_head_returns_headers_without_a_body(echo: PageServer, reader: FetchService) -> None:
    out = (await reader.call("http_request", {"url": echo.url("/echo"), "method": "HEAD"}))[
        "structuredContent"
    ]
    assert (out["status"], out["body"], out["response_bytes"]) == (200, "", 0)
    assert out["headers"]["content-type"] == "application/json"


async def test_an_http_error_status_is_a_normal_result(echo: PageServer, reader: FetchService) -> None:
    result = await reader.call("http_request", {"url": echo.url("/gone")})
    assert result["isError"] is False
    assert (result["structuredContent"]["status"], result["structuredContent"]["body"]) == (
        404,
        "no such thing",
    )


async def test_303_turns_a_post_into_a_get_and_307_keeps_it(echo: PageServer, writer: FetchService) -> None:
    see_other = await writer.call(
        "http_request", {"url": echo.url("/see-other"), "method": "POST", "body": "b"}
    )
    keep = await writer.call("http_request", {"url": echo.url("/keep"), "method": "POST", "body": "b"})
    assert json.loads(see_other["structuredContent"]["body"])["method"] == "GET"
    assert json.loads(keep["structuredContent"]["body"])["method"] == "POST"
    assert json.loads(keep["structuredContent"]["body"])["body"] == "b"


async def test_raw_keeps_the_body_as_sent(echo: PageServer, reader: FetchService) -> None:
    out = (await reader.call("http_request", {"url": echo.url("/echo"), "raw": True}))["structuredContent"]
    assert "\n" not in out["body"] and json.loads(out["body"])["method"] == "GET"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"body": "a", "json": {"b": 1}}, "give one of them"),
        ({"headers": {"Host": "evil.example"}}, "Host cannot be set"),
        ({"headers": {"Transfer-Encoding": "chunked"}}, "Transfer-Encoding cannot be set"),
        ({"method": "TRACE"}, "Invalid arguments for tool http_request: method"),
        ({"bogus": 1}, "bogus: unknown argument"),
    ],
)
async def test_bad_requests_are_refused_with_a_reason(
    arguments: dict[str, object], message: str, echo: PageServer, writer: FetchService
) -> None:
    result = await writer.call("http_request", {"url": echo.url("/echo"), **arguments})
    assert result["isError"] is True
    assert message in text_of(result)


async def test_a_per_call_timeout_below_the_setting_applies(
    page_server: PageServer, fetch_service: Callable[..., FetchService]
) -> None:
    page_server.routes["/slow"] = Reply(delay_s=3)
    result = await fetch_service(allowed_hosts=["127.0.0.1"]).call(
        "http_request", {"url": page_server.url("/slow"), "timeout": 0.3}
    )
    assert result["isError"] is True
    assert "within 0.3 s" in text_of(result)


async def test_the_official_sdk_lists_and_calls_both_tools(echo: PageServer, reader: FetchService) -> None:
    echo.routes["/page"] = Reply(
        headers={"Content-Type": "text/html"},
        body=b"<html><title>T</title><body><main><p>Hi there</p></main></body></html>",
    )
    async with Client(f"{reader.url}/mcp", mode="auto") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool("fetch", {"url": echo.url("/page")})
        request = await client.call_tool("http_request", {"url": echo.url("/echo"), "method": "HEAD"})
    assert set(tools) == {"fetch", "http_request"}
    assert tools["fetch"].annotations.read_only_hint is True
    assert set(tools["fetch"].input_schema["properties"]) == {"url", "max_length", "start_index", "raw"}
    assert "json" in tools["http_request"].input_schema["properties"]
    assert result.is_error is False
    assert result.content[0].text == f"Contents of {echo.url('/page')}:\nHi there"
    assert result.structured_content["title"] == "T"
    assert request.structured_content["status"] == 200


def test_settings_match_the_registry() -> None:
    entry = load_registry()["fetch"]
    defaults = load_settings(FetchSettings, environ={})
    registry_defaults = {var.name: var.default for var in entry.env}
    assert set(registry_defaults) == {name.upper() for name in FetchSettings.model_fields}
    from_registry = load_settings(FetchSettings, environ={k: v for k, v in registry_defaults.items() if v})
    assert from_registry == defaults


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Ok": "\u0080"}, "printable ASCII"),
        ({"X-Ok": "a\r\nInjected: 1"}, "printable ASCII"),
        ({"Bad Name": "x"}, "not a valid header name"),
    ],
)
async def test_header_names_and_values_that_http_cannot_carry_are_refused(
    echo: PageServer, reader: FetchService, headers: dict[str, str], problem: str
) -> None:
    result = await reader.call("http_request", {"url": echo.url("/echo"), "headers": headers})
    assert result["isError"] is True
    assert problem in text_of(result)
