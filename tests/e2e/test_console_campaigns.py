"""The campaign pages through HTTP: the overview's live state and warnings, the link builder."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.test_console import DEMO_TARGETS, demo_ping, sign_in


@pytest.fixture
async def signed_in(make_service: Any) -> Any:
    async with make_service(seed_demo=True) as svc:
        demo = await svc.demo()
        await sign_in(svc.client, demo["email"], demo["password"])
        yield svc, demo


def warnings_of(page: httpx.Response) -> list[str]:
    found = re.search(r'<section id="warnings".*?</section>', page.text, re.S)
    return re.findall(r"<li><strong>([^<]+)</strong>", found.group(0)) if found else []


async def test_the_overview_shows_live_state_against_caps(signed_in: Any) -> None:
    svc, demo = signed_in
    listed = await svc.client.get("/console/campaigns")
    assert f'href="/console/campaigns/{demo["campaign_id"]}"' in listed.text

    reserved = await demo_ping(svc, demo)  # Acme (2 at a time, 50 a day) is open at 10:00 NY
    admin = {"Authorization": f"Bearer {demo['admin_token']}"}
    call = {"call_id": "c-1", "from": "+12125550123", "to": reserved["inbound_number"]}
    assert (await svc.client.post("/api/v1/calls", json=call, headers=admin)).status_code == 200
    connected = await svc.client.post("/api/v1/calls/c-1/connected", json={}, headers=admin)
    assert connected.status_code == 200
    page = await svc.client.get(f"/console/campaigns/{demo['campaign_id']}")
    assert page.status_code == 200
    rows = re.findall(r"<tr>\s*<td>(?:<a [^>]+>)?([^<]+)(?:</a>)?</td>(.*?)</tr>", page.text, re.S)
    states = {name: body for name, body in rows if name in DEMO_TARGETS}
    assert set(states) == set(DEMO_TARGETS)
    acme, beacon = states[DEMO_TARGETS[0]], states[DEMO_TARGETS[1]]
    assert ">open<" in acme
    assert "1 of 2 concurrent calls" in acme
    assert "1 of 50 today" in acme
    assert ">closed<" in beacon
    assert "0 of 20 this hour" in beacon
    assert demo["key"] in page.text
    assert "15 s" in page.text
    assert warnings_of(page) == []


async def test_an_unpaid_publisher_is_warned_of_until_a_criterion_pays_it(
    signed_in: Any,
) -> None:
    svc, demo = signed_in
    admin = {"Authorization": f"Bearer {demo['admin_token']}"}
    overview = f"/console/campaigns/{demo['campaign_id']}"
    added = await svc.client.post(
        "/api/v1/publishers", json={"publisher_id": "new-pub"}, headers=admin
    )
    assert added.status_code == 201, added.text

    assert warnings_of(await svc.client.get(overview)) == ["publisher new-pub"]
    paying = await svc.client.post(
        "/api/v1/conversion-criteria",
        json={
            "campaign_id": demo["campaign_id"],
            "publisher_id": "new-pub",
            "payout": 4.0,
            "buffer_seconds": 60,
        },
        headers=admin,
    )
    assert paying.status_code == 201, paying.text
    assert warnings_of(await svc.client.get(overview)) == []


async def test_another_companys_campaign_is_not_found(signed_in: Any) -> None:
    svc, _ = signed_in
    assert (await svc.client.get("/console/campaigns/999")).status_code == 404


async def test_the_link_builder_gives_links_that_ping(signed_in: Any) -> None:
    svc, demo = signed_in
    page = await svc.client.get(
        f"/console/campaigns/{demo['campaign_id']}/links",
        params={
            "key": demo["key"],
            "publisher_id": demo["publisher_id"],
            "tags": "caller_zip\ncaller_state=NY",
        },
    )
    assert page.status_code == 200
    found = re.search(r'<code id="rtb-link">([^<]+)</code>', page.text)
    assert found is not None
    link = html.unescape(found.group(1))
    expected = (
        f"http://callbid.test/rtbs.json?key={demo['key']}&publisher_id={demo['publisher_id']}"
        "&caller_number=[caller_number]&caller_zip=[caller_zip]&caller_state=NY"
    )
    assert link == expected
    assert "call_reservations.json?key=" in page.text

    as_publisher = link.replace("[caller_number]", quote("+12125550123"))
    answer = await svc.client.post(as_publisher.replace("[caller_zip]", "10001"))
    assert answer.json()["status"] == "reserved"

    bad = await svc.client.get(
        f"/console/campaigns/{demo['campaign_id']}/links",
        params={"key": demo["key"], "publisher_id": "p", "tags": "bad name"},
    )
    assert "tags: line 1" in bad.text


async def test_links_use_the_public_url(make_service: Any) -> None:
    async with make_service(seed_demo=True, public_url="https://calls.example.com/") as svc:
        demo = await svc.demo()
        bearer = {"Authorization": f"Bearer {demo['admin_token']}"}
        page = await svc.client.get(
            f"/console/campaigns/{demo['campaign_id']}/links",
            params={"key": demo["key"], "publisher_id": "p1"},
            headers=bearer,
        )
        assert f"https://calls.example.com/rtbs.json?key={demo['key']}&amp;publisher_id=p1" in (
            page.text
        )


async def test_a_console_address_that_is_no_page_answers_an_html_404(signed_in: Any) -> None:
    svc, _ = signed_in
    for path in ("/console/campaigns/abc", "/console/nothing-here", "/console/targets/x/edit"):
        page = await svc.client.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        assert "page not found" in page.text or "not found" in page.text
    api = await svc.client.get("/api/v1/campaigns/abc")
    assert api.headers["content-type"] == "application/json"
