"""The SSRF guard at work in the running service, against real servers on loopback addresses.

Every refused case asserts that nothing reached a target: the loopback page servers count accepted
connections, and ``connect_attempts`` records every TCP connect the service's client starts, so a
refused address outside loopback is shown never to have been dialled either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpcore
import pytest

from harness.pageserver import PageServer, Reply
from tests.services.fetch.conftest import FetchService, running_fetch_service, static_resolver, text_of


class _RecordingBackends:
    """Replaces ``httpcore.AnyIOBackend`` so that every dial of the fetch service is recorded.

    The service's pinned backend builds its dialler from ``httpcore.AnyIOBackend`` when the service
    starts; the test's own client to the service builds its dialler elsewhere, so only the service's
    dials land in ``attempts``.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        attempts: list[tuple[str, int]] = []
        real_backend = httpcore.AnyIOBackend

        class RecordingBackend(real_backend):  # type: ignore[misc, valid-type]
            async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
                attempts.append((host, port))
                return await super().connect_tcp(host, port, *args, **kwargs)

        monkeypatch.setattr(httpcore, "AnyIOBackend", RecordingBackend)
        self.attempts = attempts


@pytest.fixture
def connect_attempts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (address, port) the fetch service dials during the test (start the service after it)."""
    return _RecordingBackends(monkeypatch).attempts


@pytest.fixture(scope="module")
def guarded() -> Iterator[tuple[FetchService, PageServer, list[tuple[str, int]]]]:
    """One default-guarded service, one loopback page server, and the service's dial log, for the module."""
    with pytest.MonkeyPatch.context() as monkeypatch, PageServer("127.0.0.1").running() as page_server:
        attempts = _RecordingBackends(monkeypatch).attempts
        page_server.routes["/secret"] = _html("internal admin page")
        with running_fetch_service(ignore_robots=True) as service:
            yield service, page_server, attempts


def _html(text: str) -> Reply:
    return Reply(
        headers={"Content-Type": "text/html"}, body=f"<html><body><p>{text}</p></body></html>".encode()
    )


LOOPBACK_SPELLINGS = [
    "127.0.0.1", "127.1", "127.0.1", "0x7f.1", "0x7f.0.0.1", "2130706433", "0x7f000001", "017700000001",
    "0177.0.0.1", "127.0.0.1.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]", "localhost", "LocalHost.",
]  # fmt: skip


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_loopback_in_any_spelling_is_refused_and_never_reached(
    host: str, guarded: tuple[FetchService, PageServer, list[tuple[str, int]]]
) -> None:
    service, page_server, attempts = guarded
    attempts.clear()
    connections = page_server.connections
    result = await service.fetch(url=f"http://{host}:{page_server.port}/secret")
    assert result["isError"] is True
    # httpx itself refuses a few spellings (a dotted part longer than three digits) as invalid URLs.
    assert text_of(result).startswith(("Blocked by the SSRF guard", "Invalid URL"))
    assert page_server.connections == connections
    assert attempts == []


OTHER_BLOCKED = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.169.254", "2852039166", "0xa9fea9fe",
    "100.100.100.200", "192.0.0.192", "0.0.0.0", "0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    "198.18.0.1", "[::]", "[::1]", "[fd00:ec2::254]", "[fe80::1]", "[fc00::1]", "[ff02::1]",
    "[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::]", "metadata.google.internal",
    "metadata",
]  # fmt: skip


@pytest.mark.parametrize("host", OTHER_BLOCKED)
async def test_private_metadata_and_special_addresses_are_refused_without_dialling(
    host: str, guarded: tuple[FetchService, PageServer, list[tuple[str, int]]]
) -> None:
    service, _, attempts = guarded
    attempts.clear()
    result = await service.call("http_request", {"url": f"http://{host}/latest/meta-data/"})
    assert result["isError"] is True
    assert text_of(result).startswith("Blocked by the SSRF guard")
    assert attempts == []


async def test_metadata_stays_refused_with_allow_private(
    fetch_service: Callable[..., FetchService], connect_attempts: list[tuple[str, int]]
) -> None:
    service = fetch_service(allow_private=True, ignore_robots=True)
    result = await service.fetch(url="http://169.254.169.254/latest/meta-data/iam/")
    assert result["isError"] is True
    assert "cloud metadata" in text_of(result)
    assert connect_attempts == []


async def test_allow_private_opens_loopback(
    page_server: PageServer, fetch_service: Callable[..., FetchService]
) -> None:
    page_server.routes["/home"] = _html("homelab dashboard")
    service = fetch_service(allow_private=True, ignore_robots=True)
    result = await service.fetch(url=page_server.url("/home"))
    assert result["isError"] is False
    assert "homelab dashboard" in result["structuredContent"]["content"]


async def test_allowed_hosts_open_one_address_and_not_its_neighbour(
    page_server: PageServer, second_server: PageServer, fetch_service: Callable[..., FetchService]
) -> None:
    second_server.routes["/"] = _html("allowed")
    page_server.routes["/"] = _html("not allowed")
    service = fetch_service(allowed_hosts=["127.0.0.2/32"], ignore_robots=True)
    allowed = await service.fetch(url=second_server.url("/"))
    refused = await service.fetch(url=page_server.url("/"))
    assert allowed["isError"] is False
    assert refused["isError"] is True
    assert page_server.connections == 0


async def test_a_redirect_from_an_allowed_host_to_a_blocked_address_is_refused(
    page_server: PageServer, second_server: PageServer, fetch_service: Callable[..., FetchService]
) -> None:
    page_server.routes["/secret"] = _html("internal")
    second_server.routes["/go"] = Reply(302, {"Location": page_server.url("/secret")})
    service = fetch_service(allowed_hosts=["127.0.0.2"], ignore_robots=True)
    result = await service.fetch(url=second_server.url("/go"))
    assert result["isError"] is True
    assert "127.0.0.1" in text_of(result) and "Blocked" in text_of(result)
    assert second_server.paths() == ["/go"]
    assert page_server.connections == 0


async def test_a_redirect_to_a_metadata_name_is_refused(
    second_server: PageServer,
    fetch_service: Callable[..., FetchService],
    connect_attempts: list[tuple[str, int]],
) -> None:
    second_server.routes["/go"] = Reply(
        301, {"Location": "http://metadata.google.internal/computeMetadata/v1/"}
    )
    service = fetch_service(allowed_hosts=["127.0.0.2"], ignore_robots=True)
    result = await service.call("http_request", {"url": second_server.url("/go")})
    assert result["isError"] is True
    assert "metadata" in text_of(result)
    assert [host for host, _ in connect_attempts] == ["127.0.0.2"]


async def test_a_name_that_resolves_to_a_blocked_address_is_refused(
    page_server: PageServer, fetch_service: Callable[..., FetchService]
) -> None:
    page_server.routes["/"] = _html("internal")
    service = fetch_service(ignore_robots=True)
    service.use_resolver(static_resolver({"intranet.example": ["127.0.0.1"]}))
    result = await service.fetch(url=f"http://intranet.example:{page_server.port}/")
    assert result["isError"] is True
    assert "intranet.example resolves to 127.0.0.1, loopback" in text_of(result)
    assert page_server.connections == 0


@contextlib.contextmanager
def _same_port_pair() -> Iterator[tuple[PageServer, PageServer]]:
    """A server on 127.0.0.2 and another on 127.0.0.1 listening on the same port number."""
    for _ in range(20):
        with PageServer("127.0.0.2").running() as allowed:
            try:
                with PageServer("127.0.0.1", allowed.port).running() as blocked:
                    yield allowed, blocked
                    return
            except RuntimeError:
                continue
    raise RuntimeError("no port free on both addresses")


async def test_dns_rebinding_cannot_switch_the_address_after_the_check(
    fetch_service: Callable[..., FetchService],
) -> None:
    """The resolver answers an allowed address first and loopback afterwards, as a rebinding attacker does."""
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    with _same_port_pair() as (allowed, blocked):
        allowed.routes["/"] = _html("public content")
        blocked.routes["/"] = _html("internal secret")
        service = fetch_service(allowed_hosts=["127.0.0.2"], ignore_robots=True)
        service.use_resolver(rebinding)
        first = await service.fetch(url=f"http://rebind.example:{allowed.port}/")
        second = await service.fetch(url=f"http://rebind.example:{allowed.port}/")
    assert first["isError"] is False
    assert "public content" in first["structuredContent"]["content"]
    assert lookups == ["rebind.example", "rebind.example"]  # one lookup per fetch, none behind the check
    assert second["isError"] is True and "resolves to 127.0.0.1" in text_of(second)
    assert blocked.connections == 0
    assert allowed.requests[0].headers["host"] == f"rebind.example:{allowed.port}"


async def test_every_address_of_a_name_must_pass(
    page_server: PageServer,
    fetch_service: Callable[..., FetchService],
    connect_attempts: list[tuple[str, int]],
) -> None:
    service = fetch_service(allowed_hosts=["127.0.0.2"], ignore_robots=True)
    service.use_resolver(static_resolver({"mixed.example": ["127.0.0.2", "127.0.0.1"]}))
    result = await service.fetch(url=f"http://mixed.example:{page_server.port}/")
    assert result["isError"] is True
    assert connect_attempts == []
    assert page_server.connections == 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:70/"])
async def test_non_http_schemes_are_refused(url: str, fetch_service: Callable[..., FetchService]) -> None:
    result = await fetch_service(allow_private=True).fetch(url=url)
    assert result["isError"] is True
    assert "only http and https" in text_of(result)


async def test_a_redirect_to_a_non_http_scheme_is_refused(
    page_server: PageServer, fetch_service: Callable[..., FetchService]
) -> None:
    page_server.routes["/go"] = Reply(302, {"Location": "file:///etc/passwd"})
    result = await fetch_service(allow_private=True, ignore_robots=True).fetch(url=page_server.url("/go"))
    assert result["isError"] is True
    assert "only http and https" in text_of(result)
