"""The SSRF guard: which addresses a request may reach, decided once per hop on the address connected to.

:meth:`Guard.check` turns a URL into a :class:`Destination`: the host's addresses, resolved once and
each checked. The HTTP client then connects to those addresses and no others (see client.py), so a
name that answers a public address to the check and a private one to the connection (DNS rebinding)
gets nowhere. Hosts written as numbers are read the way a browser reads them (``127.1``, ``0x7f.1``,
``2130706433``, ``017700000001``), and IPv6 forms that wrap an IPv4 address (mapped, compatible,
NAT64, 6to4) are judged by the address they wrap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``await resolver(host, port)`` -> the host's addresses as strings; raises ``socket.gaierror``."""


class BlockedError(Exception):
    """The URL may not be fetched: its scheme, its host, or an address it resolves to is refused."""


class ResolveError(Exception):
    """The host name could not be resolved."""


def _networks(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Cloud metadata and link-local service endpoints. They stay refused with FETCH_ALLOW_PRIVATE=true:
# a homelab never needs them and they hand out credentials. Only FETCH_ALLOWED_HOSTS opens them.
METADATA_NETWORKS = _networks(
    "169.254.0.0/16",  # link-local: AWS/GCP/Azure/DigitalOcean/OpenStack 169.254.169.254, ECS 169.254.170.2
    "100.100.100.200/32",  # Alibaba Cloud
    "192.0.0.192/32",  # Oracle Cloud
    "fd00:ec2::/32",  # AWS IPv6 (fd00:ec2::254)
    "fd20:ce::/32",  # GCP IPv6 (fd20:ce::254)
    "fe80::/10",  # IPv6 link-local
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)

# Special-purpose ranges (IANA registries) that are not public destinations, with a word for each.
BLOCKED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), label)
    for cidr, label in (
        ("0.0.0.0/8", "unspecified ('this network')"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared CGNAT space (RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments (Teredo, ORCHID, ...)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6)"),
        ("fc00::/7", "unique local (ULA)"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)

_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system's resolver (getaddrinfo), as a connection would."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked host: the URL's host as the client sends it, its port, and the addresses to connect to."""

    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """What the guard lets through besides public addresses."""

    allow_private: bool = False
    allowed_names: frozenset[str] = frozenset()
    allowed_suffixes: tuple[str, ...] = ()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def build(cls, *, allow_private: bool = False, allowed_hosts: Iterable[str] = ()) -> GuardPolicy:
        """From FETCH_ALLOW_PRIVATE and FETCH_ALLOWED_HOSTS (names, ``*.domain`` wildcards, IPs, CIDRs)."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for entry in allowed_hosts:
            item = entry.strip().lower().rstrip(".")
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if item.startswith("*."):
                suffixes.append(item[1:])
            else:
                names.add(item)
        return cls(allow_private, frozenset(names), tuple(suffixes), tuple(networks))

    def allows_name(self, host: str) -> bool:
        return host in self.allowed_names or host.endswith(self.allowed_suffixes or ("\0",))

    def allows_address(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.allowed_networks if network.version == address.version
        )


def parse_ip_host(host: str) -> IPAddress | None:
    """The address a host written as an IP literal denotes, in any spelling; ``None`` for a name.

    IPv4 follows the WHATWG URL standard (what browsers and most resolvers accept): one to four
    parts, each decimal, octal (leading ``0``) or hex (``0x``), the last filling the remaining bytes.
    A host that ends in a number but is no valid address raises :class:`BlockedError`.
    """
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in literal:
        try:
            return ipaddress.IPv6Address(literal)
        except ValueError:
            raise BlockedError(f"{host!r} is not a valid IPv6 address") from None
    parts = literal.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not parts or not _looks_numeric(parts[-1]):
        return None
    numbers = [_ipv4_number(part, host) for part in parts]
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise BlockedError(f"{host!r} is not a valid IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _looks_numeric(part: str) -> bool:
    if part.isascii() and part.isdigit():
        return True
    return part[:2].lower() == "0x" and all(c in "0123456789abcdefABCDEF" for c in part[2:])


def _ipv4_number(part: str, host: str) -> int:
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        if part.isascii() and part.isdigit():
            return int(part, 10)
    except ValueError:
        pass
    raise BlockedError(f"{host!r} is not a valid IPv4 address")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: mapped, compatible, NAT64 (64:ff9b::/96) or 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def blocked_reason(address: IPAddress, policy: GuardPolicy) -> str | None:
    """Why ``address`` may not be reached under ``policy``, or ``None`` when it may."""
    if policy.allows_address(address):
        return None
    if any(address in network for network in METADATA_NETWORKS if network.version == address.version):
        return "a cloud metadata / link-local address"
    if isinstance(address, ipaddress.IPv6Address):
        wrapped = embedded_ipv4(address)
        if wrapped is not None:
            inner = blocked_reason(wrapped, policy)
            if inner:
                return f"an IPv6 form of {wrapped}, {inner}"
            if address in _SIX_TO_FOUR and not policy.allow_private:
                return f"a 6to4 address (2002::/16, wrapping {wrapped})"
            return None
    if policy.allow_private:
        return None
    for network, label in BLOCKED_NETWORKS:
        if network.version == address.version and address in network:
            return f"{label} ({network})"
    if not address.is_global:
        return "not a globally routable address"
    return None


class Guard:
    """Checks each hop's URL and returns the addresses the client may connect to."""

    def __init__(self, policy: GuardPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    async def check(self, url: httpx.URL) -> Destination:
        """Resolve ``url``'s host once and check every address; raises BlockedError or ResolveError."""
        if url.scheme not in ("http", "https"):
            raise BlockedError(
                f"only http and https URLs are fetched, not {url.scheme or 'a relative'} URL {url}"
            )
        raw_host = url.raw_host.decode("ascii")
        if not raw_host:
            raise BlockedError(f"{url} has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        host = raw_host.lower().rstrip(".")
        name_allowed = self.policy.allows_name(host)
        literal = parse_ip_host(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            if not name_allowed:
                self._check_name(host)
            addresses = await self._resolve(raw_host, port)
        if not name_allowed:
            for address in addresses:
                reason = blocked_reason(address, self.policy)
                if reason:
                    shown = host if literal is None else f"{host!r}"
                    raise BlockedError(
                        f"{shown} is {address}, {reason}"
                        if literal is not None
                        else f"{shown} resolves to {address}, {reason}"
                    )
        return Destination(raw_host, port, tuple(dict.fromkeys(str(a) for a in addresses)))

    def _check_name(self, host: str) -> None:
        if host in METADATA_NAMES:
            raise BlockedError(f"{host} is a cloud metadata endpoint")
        if not self.policy.allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise BlockedError(f"{host} is a loopback name")

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = await self.resolver(host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise ResolveError(f"DNS lookup of {host} failed: {_gai_message(exc)}") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
            except ValueError:
                raise ResolveError(f"DNS lookup of {host} returned {answer!r}, not an address") from None
        if not addresses:
            raise ResolveError(f"DNS lookup of {host} returned no address")
        return addresses


def _gai_message(exc: Exception) -> str:
    if isinstance(exc, socket.gaierror) and len(exc.args) > 1:
        return str(exc.args[1])
    return str(exc)
