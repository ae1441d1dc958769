"""Fixtures for the fetch service: a counting loopback page server and the service served on loopback.

Loopback is private, so the SSRF guard refuses it by default: a test that needs the page server
opens the guard for it explicitly (``allowed_hosts=["127.0.0.1"]`` or ``allow_private=True``).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.pageserver import PageServer
from libmcp import Server, ServerSettings
from services.fetch.guard import Resolver
from services.fetch.service import service
from services.fetch.settings import FetchSettings
from tests.support.servers import run_server


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    """A page server on 127.0.0.1."""
    with PageServer("127.0.0.1").running() as server:
        yield server


@pytest.fixture
def second_server() -> Iterator[PageServer]:
    """A page server on 127.0.0.2 (another loopback address), for allowed-vs-blocked pairs."""
    with PageServer("127.0.0.2").running() as server:
        yield server


@dataclass
class FetchService:
    """The fetch service on a loopback port, called through plain JSON-RPC on /rpc."""

    url: str
    server: Server

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """``tools/call`` -> the MCP result (``content``, ``structuredContent``, ``isError``)."""
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(f"{self.url}/rpc", json=body)
        payload = response.json()
        assert "result" in payload, payload
        result: dict[str, Any] = payload["result"]
        return result

    async def fetch(self, **arguments: Any) -> dict[str, Any]:
        return await self.call("fetch", arguments)

    def use_resolver(self, resolver: Resolver) -> None:
        """Replace the guard's DNS resolver (the service resolves through it, once per hop)."""
        self.server.state.client.guard.resolver = resolver


def fetch_settings(**settings: Any) -> FetchSettings:
    """FetchSettings from keyword arguments without the ``fetch_`` prefix (``allowed_hosts=[...]``)."""
    return FetchSettings.model_validate({f"fetch_{name}": value for name, value in settings.items()})


@pytest.fixture
def fetch_service(serve_service: Callable[..., tuple[str, Server]]) -> Callable[..., FetchService]:
    """``fetch_service(allowed_hosts=[...], ...)``: the service with those FETCH_* settings (no prefix)."""

    def start(**settings: Any) -> FetchService:
        url, server = serve_service(service, fetch_settings(**settings))
        return FetchService(url, server)

    return start


@contextmanager
def running_fetch_service(**settings: Any) -> Iterator[FetchService]:
    """The service on loopback for as long as the block runs (for module-scoped fixtures)."""
    server = Server(service, fetch_settings(**settings), ServerSettings.model_validate({}))
    with run_server(server) as url:
        yield FetchService(url, server)


def text_of(result: dict[str, Any]) -> str:
    """The first text block of a tool result."""
    return str(result["content"][0]["text"])


def static_resolver(table: dict[str, list[str]]) -> Callable[[str, int], Awaitable[list[str]]]:
    """A resolver answering from ``table`` (and failing like getaddrinfo for other names), counting calls."""
    import socket

    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def self_signed_context(tmp_path: Path, name: str = "127.0.0.1") -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``name`` (trusted by nobody)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([_subject_alt_name(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def _subject_alt_name(name: str) -> Any:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[PageServer]:
    """An HTTPS page server on 127.0.0.1 with a self-signed certificate."""
    with PageServer("127.0.0.1", ssl_context=self_signed_context(tmp_path)).running() as server:
        yield server
