"""The pooled client on its own: TLS to a pinned address still verifies and names the host (SNI)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from harness.pageserver import PageServer, Reply
from services.fetch.client import FetchClient, FetchError
from services.fetch.guard import Guard, GuardPolicy
from tests.services.fetch.conftest import self_signed_context, static_resolver


def _client(resolver_table: dict[str, list[str]], trusted: Path, allowed: list[str]) -> FetchClient:
    client_context = ssl.create_default_context(cafile=str(trusted))
    return FetchClient(
        Guard(GuardPolicy.build(allowed_hosts=allowed), static_resolver(resolver_table)),
        user_agent="test",
        timeout_s=10,
        max_response_bytes=1_000_000,
        max_redirects=2,
        ssl_context=client_context,
    )


async def test_https_to_a_pinned_address_verifies_the_name_and_sends_it_as_sni(tmp_path: Path) -> None:
    """A name the guard resolved to 127.0.0.1: the connection goes to that address, TLS checks the name."""
    server_context = self_signed_context(tmp_path, "secure.example")
    seen_sni: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: seen_sni.append(name)  # type: ignore[assignment]
    with PageServer("127.0.0.1", ssl_context=server_context).running() as server:
        server.routes["/"] = Reply(headers={"Content-Type": "text/plain"}, body=b"over TLS")
        client = _client({"secure.example": ["127.0.0.1"]}, tmp_path / "cert.pem", ["secure.example"])
        try:
            response = await client.request("GET", f"https://secure.example:{server.port}/")
        finally:
            await client.aclose()
    assert (response.status, response.body) == (200, b"over TLS")
    assert seen_sni == ["secure.example"]
    assert server.requests[0].headers["host"] == f"secure.example:{server.port}"


async def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    server_context = self_signed_context(tmp_path, "other.example")
    with PageServer("127.0.0.1", ssl_context=server_context).running() as server:
        client = _client({"secure.example": ["127.0.0.1"]}, tmp_path / "cert.pem", ["secure.example"])
        try:
            with pytest.raises(FetchError) as caught:
                await client.request("GET", f"https://secure.example:{server.port}/")
        finally:
            await client.aclose()
    assert caught.value.kind == "tls"
    assert "secure.example" in caught.value.message or "match" in caught.value.message
    assert server.connections == 0


async def test_a_cookie_set_by_one_response_is_not_sent_with_the_next() -> None:
    with PageServer("127.0.0.1").running() as server:
        server.routes["/set"] = Reply(headers={"Set-Cookie": "session=abc; Path=/"}, body=b"set")
        server.routes["/next"] = Reply(body=b"next")
        client = FetchClient(
            Guard(GuardPolicy.build(allowed_hosts=["127.0.0.1"])),
            user_agent="test",
            timeout_s=10,
            max_response_bytes=1000,
            max_redirects=2,
        )
        try:
            await client.request("GET", server.url("/set"))
            await client.request("GET", server.url("/next"))
        finally:
            await client.aclose()
    assert "cookie" not in server.requests[1].headers
