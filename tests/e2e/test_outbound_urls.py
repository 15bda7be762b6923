"""Outbound URLs (buyers' passthroughs, pixels) are checked by the address guard when they are
configured, after resolving their host and with the operator's allow-list: a refused one is a
422 naming the field, on create and on change, instead of pings that fail later."""

from __future__ import annotations

from typing import Any

import pytest

from callbid.adapters.buyers.guard import AddressGuard, OutboundCheck
from callbid.service.companies import create_company
from tests.conftest import Service

API = "/api/v1"
#: What the fake resolver answers: no test asks the real DNS.
NAMES = {
    "internal.buyer.test": ["10.20.30.40"],
    "metadata.buyer.test": ["169.254.169.254"],
    "mixed.buyer.test": ["10.0.0.7", "93.184.216.34"],
    "buyer.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
}
REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://10.0.0.1/bid", "10.0.0.1 is a private address"),
    ("http://127.0.0.1:8080/bid", "127.0.0.1 is a loopback address"),
    ("http://[::1]/bid", "::1 is a loopback address"),
    ("http://[fd00::1]/bid", "fd00::1 is a private address"),
    ("http://[::ffff:169.254.169.254]/bid", "is a link-local address"),
    ("http://0.0.0.0/bid", "0.0.0.0 is an unspecified address"),
    ("http://100.64.0.1/bid", "is a shared (carrier-grade NAT) address"),
    ("http://2130706433/bid", "2130706433 (read as 127.0.0.1)"),
    ("http://0xA9FEA9FE/bid", "(read as 169.254.169.254)"),
    ("http://0177.0.0.1/bid", "(read as 127.0.0.1)"),
    ("http://127.1/bid", "(read as 127.0.0.1)"),
    ("https://internal.buyer.test/bid", "resolves to 10.20.30.40, which is a private address"),
    ("https://metadata.buyer.test/x", "resolves to 169.254.169.254, which is a link-local"),
]
ACCEPTED = [
    "https://buyer.test/bid?caller=[caller_number]",
    "https://mixed.buyer.test/bid",  # one public address: the connection goes there
    "https://unknown.buyer.test/bid",  # does not resolve (yet): checked at each connection
    "https://[buyer_host]/bid",  # a token: known only when pinging
    "http://93.184.216.34/bid",
]


async def fake_lookup(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise OSError(f"unknown host {host}")
    return NAMES[host]


def offline(svc: Service, allow: tuple[str, ...] = ()) -> None:
    svc.runtime.outbound = OutboundCheck(
        AddressGuard(allow or svc.settings.buyer_allow_networks), fake_lookup
    )


@pytest.fixture
async def owner(service: Service) -> tuple[Service, dict[str, str], int]:
    offline(service)
    _company_id, token = await create_company(service.runtime.sessions, "Acme")
    headers = {"Authorization": f"Bearer {token}"}
    created = await service.client.post(f"{API}/campaigns", json={"name": "c"}, headers=headers)
    assert created.status_code == 201, created.text
    return service, headers, created.json()["id"]


def target(url: str) -> dict[str, Any]:
    return {
        "name": "Buyer",
        "destination": "+12125550100",
        "passthrough": {"template": "callbid", "url": url},
    }


def pixel(campaign_id: int, url: str) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "event": "reserved", "url": url}


def refused_with(response: Any, loc: list[str], words: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status"] == "failed"
    [error] = body["errors"]
    assert error["loc"] == loc
    assert words in error["msg"]
    assert "CALLBID_BUYER_ALLOW_NETWORKS" in error["msg"] or "read as" in error["msg"]
    assert body["info"].startswith(".".join(loc[1:]) + ": ")


@pytest.mark.parametrize(("url", "words"), REFUSED)
async def test_a_refused_address_is_a_422_for_targets_campaigns_and_pixels(
    owner: tuple[Service, dict[str, str], int], url: str, words: str
) -> None:
    svc, headers, campaign_id = owner
    for path, body, loc in [
        ("/targets", target(url), ["body", "passthrough", "url"]),
        (
            "/campaigns",
            {"name": "x", "passthrough": {"template": "callbid", "url": url}},
            ["body", "passthrough", "url"],
        ),
        ("/webhooks", pixel(campaign_id, url), ["body", "url"]),
    ]:
        refused_with(await svc.client.post(API + path, json=body, headers=headers), loc, words)
    listed = await svc.client.get(f"{API}/targets", headers=headers)
    assert listed.json() == []  # nothing saved


@pytest.mark.parametrize("url", ACCEPTED)
async def test_public_unresolved_and_templated_hosts_are_accepted(
    owner: tuple[Service, dict[str, str], int], url: str
) -> None:
    svc, headers, campaign_id = owner
    made = await svc.client.post(f"{API}/targets", json=target(url), headers=headers)
    assert made.status_code == 201, made.text
    hooked = await svc.client.post(f"{API}/webhooks", json=pixel(campaign_id, url), headers=headers)
    assert hooked.status_code == 201, hooked.text


async def test_changes_are_checked_too(owner: tuple[Service, dict[str, str], int]) -> None:
    svc, headers, campaign_id = owner
    buyer = (
        await svc.client.post(f"{API}/targets", json=target(ACCEPTED[0]), headers=headers)
    ).json()
    hook = await svc.client.post(
        f"{API}/webhooks", json=pixel(campaign_id, ACCEPTED[0]), headers=headers
    )
    bad = {"template": "callbid", "url": "http://169.254.169.254/"}
    for path, body, loc in [
        (f"/targets/{buyer['id']}", {"passthrough": bad}, ["body", "passthrough", "url"]),
        (f"/campaigns/{campaign_id}", {"passthrough": bad}, ["body", "passthrough", "url"]),
        (f"/webhooks/{hook.json()['id']}", {"url": bad["url"]}, ["body", "url"]),
    ]:
        answer = await svc.client.patch(API + path, json=body, headers=headers)
        refused_with(answer, loc, "link-local")
    kept = await svc.client.get(f"{API}/targets/{buyer['id']}", headers=headers)
    assert kept.json()["passthrough"]["url"] == ACCEPTED[0]
    removed = await svc.client.patch(
        f"{API}/targets/{buyer['id']}", json={"passthrough": None}, headers=headers
    )
    assert removed.status_code == 200, removed.text


async def test_the_operator_allow_list_lets_a_private_buyer_in(make_service: Any) -> None:
    async with make_service(buyer_allow_networks=["10.20.0.0/16", "127.0.0.0/8"]) as svc:
        offline(svc)
        _company_id, token = await create_company(svc.runtime.sessions, "Acme")
        headers = {"Authorization": f"Bearer {token}"}
        for url in ["https://internal.buyer.test/bid", "http://127.0.0.1:9000/bid"]:
            made = await svc.client.post(f"{API}/targets", json=target(url), headers=headers)
            assert made.status_code == 201, made.text
        still = await svc.client.post(
            f"{API}/targets", json=target("http://10.0.0.1/"), headers=headers
        )
        refused_with(still, ["body", "passthrough", "url"], "10.0.0.1 is a private address")


async def test_the_app_checks_with_its_settings_allow_list(make_service: Any) -> None:
    """Without the test's fake resolver: the service's own check uses the allow-list."""
    async with make_service(buyer_allow_networks=["127.0.0.0/8"]) as svc:
        _company_id, token = await create_company(svc.runtime.sessions, "Acme")
        headers = {"Authorization": f"Bearer {token}"}
        made = await svc.client.post(
            f"{API}/targets", json=target("http://127.0.0.1:9000/"), headers=headers
        )
        assert made.status_code == 201, made.text
        refused = await svc.client.post(
            f"{API}/targets", json=target("http://[::1]:9000/"), headers=headers
        )
        refused_with(refused, ["body", "passthrough", "url"], "::1 is a loopback address")
