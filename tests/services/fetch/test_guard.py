"""The SSRF guard's decisions, checked on the guard itself: nothing here opens a connection.

Resolution goes through a table resolver, so "public" answers are only ever checked, never reached.
"""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from services.fetch.guard import BlockedError, Guard, GuardPolicy, ResolveError, blocked_reason, parse_ip_host
from tests.services.fetch.conftest import static_resolver

DEFAULT = GuardPolicy.build()


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0X7F.0X0.0X0.0X1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x0", "0.0.0.0"),
        ("169.254.43518", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
    ],
)
def test_numeric_hosts_are_read_in_every_spelling(host: str, address: str) -> None:
    assert parse_ip_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "127.0.0.1.example.com", "0x7f.example", "xn--nxasmq6b.com"])
def test_names_are_not_numbers(host: str) -> None:
    assert parse_ip_host(host) is None


@pytest.mark.parametrize("host", ["256.0.0.1", "1.2.3.4.5", "0x1.09", "08.0.0.1", "1.2.3.16777216", "[::gg]"])
def test_malformed_numeric_hosts_are_refused(host: str) -> None:
    with pytest.raises(BlockedError):
        parse_ip_host(host)


BLOCKED = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("169.254.0.1", "metadata"),
    ("100.100.100.200", "metadata"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.192", "metadata"),
    ("192.0.0.8", "IETF"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4 relay"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "IPv6 form of 127.0.0.1"),
    ("::ffff:10.0.0.1", "IPv6 form of 10.0.0.1"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::127.0.0.1", "IPv6 form of 127.0.0.1"),
    ("64:ff9b::7f00:1", "IPv6 form of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:7f00:1::1", "IPv6 form of 127.0.0.1"),
    ("2002:c0a8:101::1", "IPv6 form of 192.168.1.1"),
    ("2002:808:808::1", "6to4"),
    ("100::1", "discard"),
    ("2001::1", "Teredo"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fd00:ec2::254", "metadata"),
    ("fd20:ce::254", "metadata"),
    ("fe80::1", "metadata / link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
]


@pytest.mark.parametrize(("address", "word"), BLOCKED)
def test_every_special_range_is_refused_by_default(address: str, word: str) -> None:
    reason = blocked_reason(ipaddress.ip_address(address), DEFAULT)
    assert reason is not None
    assert word.lower() in reason.lower()


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "::ffff:8.8.8.8"],
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address), DEFAULT) is None


def test_allow_private_opens_private_ranges_but_not_cloud_metadata() -> None:
    policy = GuardPolicy.build(allow_private=True)
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "fc00::1",
        "::ffff:192.168.0.1",
        "2002:c0a8:101::1",
    ):
        assert blocked_reason(ipaddress.ip_address(address), policy) is None, address
    for address in (
        "169.254.169.254",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
    ):
        assert "metadata" in (blocked_reason(ipaddress.ip_address(address), policy) or ""), address


def test_allowed_cidrs_open_exactly_their_addresses() -> None:
    policy = GuardPolicy.build(allowed_hosts=["192.168.10.0/24", "fd00::1", "169.254.169.254"])
    assert blocked_reason(ipaddress.ip_address("192.168.10.77"), policy) is None
    assert blocked_reason(ipaddress.ip_address("::ffff:192.168.10.77"), policy) is None
    assert blocked_reason(ipaddress.ip_address("fd00::1"), policy) is None
    assert blocked_reason(ipaddress.ip_address("169.254.169.254"), policy) is None
    assert blocked_reason(ipaddress.ip_address("192.168.11.1"), policy) is not None
    assert blocked_reason(ipaddress.ip_address("fd00::2"), policy) is not None


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    guard = Guard(DEFAULT, static_resolver({"intranet.example": ["93.184.215.14", "10.0.0.5"]}))
    with pytest.raises(BlockedError, match=r"intranet.example resolves to 10.0.0.5, private"):
        await guard.check(httpx.URL("http://intranet.example/"))


async def test_a_public_name_gives_its_checked_addresses_to_connect_to() -> None:
    resolver = static_resolver({"example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})
    destination = await Guard(DEFAULT, resolver).check(httpx.URL("https://example.com/x"))
    assert destination.host == "example.com"
    assert destination.port == 443
    assert destination.addresses == ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert resolver.calls == ["example.com"]  # type: ignore[attr-defined]


async def test_allowed_names_skip_the_address_check() -> None:
    resolver = static_resolver(
        {"nas.home.arpa": ["192.168.1.20"], "x.lab.example": ["10.0.0.9"], "lab.example.evil": ["10.0.0.9"]}
    )
    guard = Guard(GuardPolicy.build(allowed_hosts=["nas.home.arpa", "*.lab.example"]), resolver)
    assert (await guard.check(httpx.URL("http://nas.home.arpa:5000/"))).addresses == ("192.168.1.20",)
    assert (await guard.check(httpx.URL("http://x.lab.example/"))).addresses == ("10.0.0.9",)
    with pytest.raises(BlockedError):
        await guard.check(httpx.URL("http://lab.example.evil/"))


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "http://LOCALHOST./", "http://app.localhost/", "http://metadata.google.internal/",
     "http://metadata/", "http://instance-data/latest/meta-data/"],
)  # fmt: skip
async def test_loopback_and_metadata_names_are_refused_before_any_lookup(url: str) -> None:
    resolver = static_resolver({})
    with pytest.raises(BlockedError):
        await Guard(DEFAULT, resolver).check(httpx.URL(url))
    assert resolver.calls == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "gopher://127.0.0.1:25/"])
async def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(BlockedError, match="only http and https"):
        await Guard(DEFAULT, static_resolver({})).check(httpx.URL(url))


async def test_dns_failure_is_its_own_error() -> None:
    with pytest.raises(ResolveError, match=r"DNS lookup of nowhere\.example failed"):
        await Guard(DEFAULT, static_resolver({})).check(httpx.URL("http://nowhere.example/"))
