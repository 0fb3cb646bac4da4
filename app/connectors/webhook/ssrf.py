"""Which callback URLs Ferry may POST to: no private, loopback, link-local or metadata address.

A callback URL comes from whoever submits a run. Without this guard a tenant could make
Ferry's workers call the cloud metadata service or an internal admin port and read the
answer back through its own run. The rule: every address a host resolves to must be a
public (global) one, unless its network is allow-listed in `ferry.yaml`
(`webhooks: {allow_private: [...]}`). An IPv4 address wrapped in IPv6
(`::ffff:127.0.0.1`) is judged as the IPv4 address it is.

Checked twice: at submission (`check_callback_url`, for the HTTP API) and at delivery,
where `GuardedResolver` is aiohttp's resolver: the addresses it returns are the checked
ones and the only ones the connection may use, so a DNS answer that changes between the
check and the connect (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

from app.contracts.errors import BadInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata services, named apart so the refusal says what was at stake.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)


class CallbackRefused(BadInputError):
    """A callback URL Ferry will not call: not http(s), no host, or a non-public address."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"callback URL {url!r} refused: {reason}")
        self.url = url
        self.reason = reason


def allow_list(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`); ValueError on a bad one."""
    return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in networks)


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def refusal(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why `address` may not be called (None: it may): its kind, unless allow-listed."""
    plain = _unmapped(address)
    if any(plain in network or address in network for network in allowed):
        return None
    if plain in METADATA_ADDRESSES:
        kind = "a cloud metadata address"
    elif plain.is_loopback:
        kind = "a loopback address"
    elif plain.is_link_local:
        kind = "a link-local address"
    elif plain.is_unspecified:
        kind = "the unspecified address"
    elif plain.is_multicast:
        kind = "a multicast address"
    elif plain.is_private:
        kind = "a private address"
    elif not plain.is_global:
        kind = "a reserved (non-public) address"
    else:
        return None
    shown = f"{address} ({plain})" if plain is not address else str(address)
    return f"{shown} is {kind} (allow it with `webhooks: allow_private:` in ferry.yaml)"


def split_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; CallbackRefused when it is none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused(url, f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused(url, "only http:// and https:// URLs are called")
    if not parts.hostname:
        raise CallbackRefused(url, "no host")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve_checked(
    host: str, port: int, allowed: Sequence[IPNetwork] = (), *, family: int = socket.AF_UNSPEC, url: str | None = None
) -> list[tuple[IPAddress, int]]:
    """Every address `host` resolves to, each checked; CallbackRefused if any is refused.

    One refused address refuses the host: a name that answers both a public and a private
    address is how rebinding attacks start.
    """
    literal = literal_address(host)
    if literal is not None:
        addresses = [(literal, socket.AF_INET6 if literal.version == 6 else socket.AF_INET)]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise CallbackRefused(url or host, f"{host} does not resolve ({exc})") from None
        addresses = [(ipaddress.ip_address(str(info[4][0]).split("%")[0]), info[0]) for info in infos]
    if not addresses:
        raise CallbackRefused(url or host, f"{host} resolves to no address")
    for address, _ in addresses:
        reason = refusal(address, allowed)
        if reason is not None:
            raise CallbackRefused(url or host, reason)
    return [(address, int(fam)) for address, fam in dict.fromkeys(addresses)]


async def check_callback_url(url: str, allowed: Sequence[IPNetwork] = ()) -> None:
    """Raise CallbackRefused unless every address `url`'s host resolves to may be called.

    For the HTTP API at submission; the connector checks again at delivery.
    """
    host, port = split_url(url)
    await resolve_checked(host, port, allowed, url=url)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for deliveries: resolves, checks every address, returns only those."""

    def __init__(self, allowed: Sequence[IPNetwork] = ()) -> None:
        self.allowed = tuple(allowed)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        checked = await resolve_checked(host, port, self.allowed, family=family)
        return [
            ResolveResult(hostname=host, host=str(address), port=port, family=fam, proto=0, flags=socket.AI_NUMERICHOST)
            for address, fam in checked
        ]

    async def close(self) -> None:
        return None
