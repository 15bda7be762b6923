"""The outbound address guard: which IP addresses and URL hosts a buyer ping may reach, and the
resolver that drops refused DNS answers."""

from __future__ import annotations

import pytest

from callbid.adapters.buyers.guard import AddressGuard, AddressRefused, GuardedResolver, Lookup

REFUSED = [
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",
    "64:ff9b::a9fe:a9fe",
    "2001:db8::1",
    "not an address",
    "",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("ip", REFUSED)
def test_refuses_non_public_addresses(ip: str) -> None:
    assert not AddressGuard().is_allowed(ip)


@pytest.mark.parametrize("ip", ALLOWED)
def test_allows_public_addresses(ip: str) -> None:
    assert AddressGuard().is_allowed(ip)


@pytest.mark.parametrize(
    ("allow", "ip"),
    [
        (["127.0.0.0/8"], "127.0.0.1"),
        (["127.0.0.0/8"], "::ffff:127.0.0.1"),
        (["10.1.0.0/16"], "10.1.200.3"),
        (["10.1.2.3"], "10.1.2.3"),
        (["fd00::/8"], "fd12::1"),
    ],
)
def test_allow_list_admits_private_addresses(allow: list[str], ip: str) -> None:
    assert AddressGuard(allow).is_allowed(ip)


def test_allow_list_is_exact() -> None:
    guard = AddressGuard(["10.1.0.0/16"])
    assert not guard.is_allowed("10.2.0.1")
    assert not guard.is_allowed("127.0.0.1")


def test_malformed_allow_list_raises() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        AddressGuard(["10.0.0.0/33x"])


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("buyer.example.com", True),
        ("1.cafe", True),
        ("1e100.net", True),
        ("8.8.8.8", True),
        ("[2606:4700:4700::1111]", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("[::1]", False),
        ("2130706433", False),
        ("127.1", False),
        ("0x7f.0.0.1", False),
        ("0177.0.0.1", False),
        ("0x7f000001", False),
    ],
)
def test_hosts_checked_before_dns(host: str, allowed: bool) -> None:
    guard = AddressGuard()
    assert guard.allows_host(host) is allowed
    assert guard.allows_host(host) is allowed


def fixed(addresses: list[str]) -> Lookup:
    async def lookup(_host: str, _port: int) -> list[str]:
        return addresses

    return lookup


async def test_resolver_drops_refused_addresses() -> None:
    lookup = fixed(["10.0.0.7", "8.8.8.8", "::1", "2606:4700:4700::1111"])
    resolver = GuardedResolver(AddressGuard(), lookup)
    assert await resolver.resolve("buyer.example.com", 443) == ["8.8.8.8", "2606:4700:4700::1111"]


async def test_resolver_refuses_when_nothing_is_left() -> None:
    resolver = GuardedResolver(AddressGuard(), fixed(["127.0.0.1", "::1"]))
    with pytest.raises(AddressRefused) as refused:
        await resolver.resolve("rebound.example.com", 80)
    assert isinstance(refused.value, OSError)
    assert refused.value.host == "rebound.example.com"


async def test_resolver_honours_the_allow_list() -> None:
    resolver = GuardedResolver(AddressGuard(["127.0.0.0/8"]), fixed(["127.0.0.1", "::1"]))
    assert await resolver.resolve("localhost", 80) == ["127.0.0.1"]


async def test_resolver_checks_ip_literals_without_a_lookup() -> None:
    resolver = GuardedResolver(AddressGuard(["10.0.0.0/8"]), fixed([]))
    assert await resolver.resolve("10.1.2.3", 80) == ["10.1.2.3"]
    assert await resolver.resolve("8.8.8.8", 80) == ["8.8.8.8"]
    with pytest.raises(AddressRefused):
        await resolver.resolve("[::1]", 80)


async def test_default_resolver_refuses_localhost() -> None:
    resolver = GuardedResolver(AddressGuard())
    with pytest.raises(AddressRefused):
        await resolver.resolve("localhost", 80)
