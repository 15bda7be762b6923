"""Outbound address guard: buyer URLs may not reach the operator's own network (SSRF).

`AddressGuard` decides per IP address; `GuardedResolver` applies it to every DNS answer at
connect time (the client connects to the addresses it returns, never to the name), so a buyer
hostname that resolves (or is rebound) to 127.0.0.1 is refused. IP-literal hosts are checked
with `AddressGuard.allows_host` before sending. `OutboundCheck` applies the same guard when a
URL is configured (admin API), after resolving its host, so an owner hears of a refused
address at once rather than from failing pings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from callbid.domain.tokens import TOKEN

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_INET_ATON = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
#: How long a configuration-time DNS lookup may take; a slower one lets the URL through.
CONFIG_LOOKUP_TIMEOUT_S = 2.0
ALLOW_SETTING = "CALLBID_BUYER_ALLOW_NETWORKS"
#: Hosts remembered by `allows_host`; the cache is emptied when it grows past this.
_HOST_CACHE_SIZE = 4096


class AddressRefused(OSError):
    """Every address a buyer's host resolved to is refused by the guard."""

    def __init__(self, host: str) -> None:
        super().__init__(f"address not allowed: {host}")
        self.host = host


def embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, 6to4, NAT64), if any."""
    if isinstance(addr, ipaddress.IPv4Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public(addr: IPAddress) -> bool:
    """Whether `addr` is a global unicast address (judged by the IPv4 address it embeds,
    if it embeds one)."""
    inner = embedded_ipv4(addr)
    if inner is not None:
        return is_public(inner)
    special = (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or (isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local)
        or addr in _SHARED
    )
    return addr.is_global and not special


def kind_of(addr: IPAddress) -> str:
    """What kind of non-public address `addr` is, in words."""
    inner = embedded_ipv4(addr)
    if inner is not None:
        return kind_of(inner)
    kinds = (
        (addr.is_unspecified, "an unspecified"),
        (addr.is_loopback, "a loopback"),
        (addr.is_link_local, "a link-local"),
        (addr.is_multicast, "a multicast"),
        (addr in _SHARED, "a shared (carrier-grade NAT)"),
        (isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local, "a site-local"),
        (addr.is_private, "a private"),
    )
    return next((kind for matches, kind in kinds if matches), "a reserved")


def parse_ip(text: str) -> IPAddress | None:
    """`text` as an IP address (an IPv6 zone suffix dropped), None if it is not one."""
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _looks_numeric(host: str) -> bool:
    # What inet_aton would still read as an IPv4 address: 2130706433, 0x7f.1, 0177.0.0.1, 127.1.
    return _INET_ATON.fullmatch(host) is not None


class AddressGuard:
    """Refuses non-public addresses unless they are inside the operator's allow-list."""

    def __init__(self, allow: Sequence[str] = ()) -> None:
        """`allow`: CIDR strings (`127.0.0.0/8`, `10.1.2.3/32`); ValueError if one is not."""
        self.allow: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in allow
        )
        self._hosts: dict[str, bool] = {}

    def is_allowed(self, ip: str) -> bool:
        """Whether a connection to `ip` may be made. Not an IP address: refused."""
        addr = parse_ip(ip)
        if addr is None:
            return False
        return is_public(addr) or self._in_allow_list(addr)

    def allows_host(self, host: str) -> bool:
        """Whether a URL's host may be connected to, as far as can be told before DNS: an
        IP literal is checked here, a numeric form that is not a plain IP is refused, and a
        hostname passes (its addresses are checked by `GuardedResolver`)."""
        verdict = self._hosts.get(host)
        if verdict is None:
            verdict = self._check_host(host)
            if len(self._hosts) >= _HOST_CACHE_SIZE:
                self._hosts.clear()
            self._hosts[host] = verdict
        return verdict

    def _check_host(self, host: str) -> bool:
        literal = host[1:-1] if host.startswith("[") else host
        if parse_ip(literal) is not None:
            return self.is_allowed(literal)
        return ":" not in literal and not _looks_numeric(literal.rstrip("."))

    def _in_allow_list(self, addr: IPAddress) -> bool:
        inner = embedded_ipv4(addr)
        return any(addr in net or (inner is not None and inner in net) for net in self.allow)


#: A DNS lookup: (host, port) -> the addresses, in preference order.
Lookup = Callable[[str, int], Awaitable[list[str]]]


async def system_lookup(host: str, port: int) -> list[str]:
    """The system resolver's addresses for `host` (getaddrinfo in the loop's executor)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedResolver:
    """A resolver that keeps only the addresses the guard allows; `AddressRefused` when none
    is left. Other lookup failures (`socket.gaierror`) pass through."""

    def __init__(self, guard: AddressGuard, lookup: Lookup = system_lookup) -> None:
        self.guard = guard
        self._lookup = lookup

    async def resolve(self, host: str, port: int) -> list[str]:
        literal = host[1:-1] if host.startswith("[") else host
        if parse_ip(literal) is not None:
            if not self.guard.is_allowed(literal):
                raise AddressRefused(host)
            return [literal]
        allowed = [a for a in await self._lookup(host, port) if self.guard.is_allowed(a)]
        if not allowed:
            raise AddressRefused(host)
        return allowed


def _inet_aton(host: str) -> str | None:
    """The dotted quad a numeric IPv4 form (2130706433, 0x7f.1, 0177.0.0.1) stands for."""
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


class OutboundCheck:
    """The guard's verdict on a URL when it is configured: its host's addresses after DNS
    resolution, judged as at send time (and with the same allow-list). A host that does not
    resolve, or not within CONFIG_LOOKUP_TIMEOUT_S, or that is a `[token]`, passes: it is
    checked again at every connection."""

    def __init__(
        self,
        guard: AddressGuard,
        lookup: Lookup = system_lookup,
        timeout: float = CONFIG_LOOKUP_TIMEOUT_S,
    ) -> None:
        self.guard = guard
        self.lookup = lookup
        self.timeout = timeout

    async def refusal(self, url: str) -> str | None:
        """Why the URL would be refused (one sentence naming the address), or None."""
        authority = url.partition("//")[2]
        for end in "/?#":
            authority = authority.partition(end)[0]
        if TOKEN.search(authority.rpartition("@")[2]):
            return None
        try:
            host = urlsplit(TOKEN.sub("x", url)).hostname
        except ValueError:
            return None  # the URL's own validation says what is wrong with it
        if not host:
            return None
        literal = parse_ip(host)
        if literal is None and _looks_numeric(host.rstrip(".")):
            dotted = _inet_aton(host.rstrip("."))
            shown = f" (read as {dotted})" if dotted else ""
            return f"{host}{shown}: write an IP address in its usual dotted or bracketed form"
        if literal is not None:
            return None if self.guard.is_allowed(host) else self._refused(host, [host])
        try:
            found = await asyncio.wait_for(self.lookup(host, 443), self.timeout)
        except (OSError, TimeoutError, UnicodeError):
            return None
        if not found or any(self.guard.is_allowed(a) for a in found):
            return None
        return self._refused(host, found)

    def _refused(self, host: str, addresses: Sequence[str]) -> str:
        addr = parse_ip(addresses[0])
        kind = kind_of(addr) if addr is not None else "a non-public"
        via = "" if addresses[0] == host else f" resolves to {addresses[0]}, which"
        return (
            f"{host}{via} is {kind} address; callbid does not send to private, loopback, "
            f"link-local or other non-public addresses (allow a network with {ALLOW_SETTING})"
        )
