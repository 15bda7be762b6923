"""The configuration forms through HTTP: they create and change through the REST API's use
cases, show the API's own message next to a refused field and keep what was typed, and a
viewer can change nothing."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest

from callbid.service.users import add_user
from tests.e2e.test_console import csrf_of, sign_in


@pytest.fixture
async def owner(make_service: Any) -> Any:
    async with make_service(seed_demo=True) as svc:
        demo = await svc.demo()
        await sign_in(svc.client, demo["email"], demo["password"])
        yield svc, demo


async def post_form(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(path, data={"csrf_token": csrf_of(page.text), **data})


def field_error(page: httpx.Response, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="e-{name}"[^>]*>([^<]*)</p>', page.text)
    assert found is not None, page.text
    return html.unescape(found.group(1))


async def test_a_refused_field_shows_the_apis_words_and_keeps_what_was_typed(
    owner: Any,
) -> None:
    svc, demo = owner
    api = await svc.client.post(
        "/api/v1/targets",
        json={"name": "Bad", "destination": "call me maybe"},
        headers={"Authorization": f"Bearer {demo['admin_token']}"},
    )
    assert api.status_code == 422
    api_words = api.json()["errors"][0]["msg"]

    page = await post_form(
        svc.client,
        f"/console/campaigns/{demo['campaign_id']}/targets/new",
        {
            "name": "Bad",
            "destination": "call me maybe",
            "timezone": "UTC",
            "priority": "1",
            "weight": "1",
            "ring_timeout": "30",
            "dedupe_seconds": "0",
            "cap_trigger": "connect",
            "hours": "mon-fri 9-17",
        },
    )
    assert page.status_code == 400
    assert field_error(page, "destination") == api_words
    assert field_error(page, "hours") == "line 1: Value error, time must be HH:MM, got '9'"
    assert 'value="call me maybe"' in page.text  # kept as typed
    assert "mon-fri 9-17</textarea>" in page.text


async def test_forms_create_change_and_delete_through_the_use_cases(owner: Any) -> None:
    svc, demo = owner
    created = await post_form(
        svc.client,
        "/console/campaigns/new",
        {"name": "Solar leads", "routing_strategy": "priority"},
    )
    assert created.status_code == 303
    overview = created.headers["location"]
    campaign_id = int(overview.rsplit("/", 1)[1])
    admin = {"Authorization": f"Bearer {demo['admin_token']}"}

    target = await post_form(
        svc.client,
        f"{overview}/targets/new",
        {
            "name": "Sunny installs",
            "destination": "+13125550111",
            "timezone": "America/Chicago",
            "priority": "1",
            "weight": "1",
            "ring_timeout": "30",
            "dedupe_seconds": "0",
            "cap_trigger": "connect",
            "concurrency_cap": "1",
            "hours": "mon-fri 08:00-18:00\nsat 18:00-02:00",
            "filters": "caller_state in IL, WI",
        },
    )
    assert target.status_code == 303, target.text
    stored = (await svc.client.get(f"/api/v1/campaigns/{campaign_id}", headers=admin)).json()
    assert len(stored["target_ids"]) == 1
    target_id = stored["target_ids"][0]
    as_api = (await svc.client.get(f"/api/v1/targets/{target_id}", headers=admin)).json()
    assert as_api["concurrency_cap"] == 1
    assert as_api["hours"] == [
        {"days": [0, 1, 2, 3, 4], "open": "08:00", "close": "18:00"},
        {"days": [5], "open": "18:00", "close": "02:00"},
    ]
    assert as_api["filters"] == [{"tag": "caller_state", "op": "in", "values": ["IL", "WI"]}]

    edit = await svc.client.get(f"/console/targets/{target_id}/edit?campaign={campaign_id}")
    assert "mon,tue,wed,thu,fri 08:00-18:00" in edit.text
    changed = await svc.client.post(
        f"/console/targets/{target_id}/edit?campaign={campaign_id}",
        data={
            "csrf_token": csrf_of(edit.text),
            "name": "Sunny installs",
            "destination": "+13125550111",
            "timezone": "America/Chicago",
            "priority": "2",
            "weight": "1",
            "ring_timeout": "30",
            "dedupe_seconds": "0",
            "cap_trigger": "connect",
            "hours": "",
            "filters": "",
        },
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == overview
    again = (await svc.client.get(f"/api/v1/targets/{target_id}", headers=admin)).json()
    assert (again["priority"], again["hours"], again["concurrency_cap"]) == (2, [], None)

    key = await post_form(
        svc.client,
        f"{overview}/keys/new",
        {
            "name": "Solar key",
            "ttl_seconds": "15",
            "timeout_seconds": "5",
            "shield_scope": "key",
            "rate_burst": "10",
        },
    )
    assert key.status_code == 303
    keys = (await svc.client.get("/api/v1/rtb-keys", headers=admin)).json()
    solar = next(k for k in keys if k["campaign_id"] == campaign_id)
    assert (solar["ttl_seconds"], solar["timeout_seconds"]) == (15, 5.0)

    page = await svc.client.get(f"/console/campaigns/{campaign_id}/edit")
    gone = await svc.client.post(
        f"/console/campaigns/{campaign_id}/delete", data={"csrf_token": csrf_of(page.text)}
    )
    assert gone.status_code == 303
    assert (await svc.client.get(overview)).status_code == 404


async def test_a_viewer_sees_no_form_and_cannot_post(owner: Any) -> None:
    svc, demo = owner
    async with svc.runtime.sessions.begin() as session:
        await add_user(session, 1, "viewer@demo.example", "a viewer password", "viewer")
    svc.client.cookies.clear()
    await sign_in(svc.client, "viewer@demo.example", "a viewer password")
    overview = await svc.client.get(f"/console/campaigns/{demo['campaign_id']}")
    assert overview.status_code == 200
    assert "Add a target" not in overview.text
    assert "/edit" not in overview.text
    refused = await svc.client.get(f"/console/campaigns/{demo['campaign_id']}/targets/new")
    assert refused.status_code == 403
    assert "viewers can change nothing" in refused.text
    log = await svc.client.get("/console/rtb")
    posted = await svc.client.post(
        "/console/campaigns/new", data={"csrf_token": csrf_of(log.text), "name": "Nope"}
    )
    assert posted.status_code == 403
    listed = await svc.client.get(
        "/api/v1/campaigns", headers={"Authorization": f"Bearer {demo['admin_token']}"}
    )
    assert [c["name"] for c in listed.json()] == ["Demo: auto insurance"]


async def test_rotating_a_key_refuses_the_old_one(owner: Any) -> None:
    svc, demo = owner
    old = demo["key"]
    params = {"publisher_id": demo["publisher_id"], "caller_number": "+12125550123"}
    assert (await svc.client.post("/rtbs.json", params={"key": old, **params})).status_code == 200
    page = await svc.client.get(f"/console/keys/{old}/edit")
    rotated = await svc.client.post(
        f"/console/keys/{old}/rotate", data={"csrf_token": csrf_of(page.text)}
    )
    assert rotated.status_code == 303
    assert (await svc.client.post("/rtbs.json", params={"key": old, **params})).status_code == 401
    admin = {"Authorization": f"Bearer {demo['admin_token']}"}
    (key,) = (await svc.client.get("/api/v1/rtb-keys", headers=admin)).json()
    assert key["key"] != old
    assert key["name"] == "Demo RTB key"
    fresh = await svc.client.post(
        "/rtbs.json", params={"key": key["key"], **params, "caller_number": "+12125550124"}
    )
    assert fresh.json()["status"] == "reserved"
    api = await svc.client.post(f"/api/v1/rtb-keys/{key['key']}/rotate", headers=admin)
    assert api.status_code == 200
    assert api.json()["key"] not in (old, key["key"])


async def test_caller_lists_take_a_csv_and_groups_their_members(owner: Any) -> None:
    svc, demo = owner
    admin = {"Authorization": f"Bearer {demo['admin_token']}"}
    page = await svc.client.get("/console/new/lists")
    csv_file = b"name,phone\nAnn,(212) 555-0101\nBob,+1 312 555 0102\nnot a number,x\n"
    created = await svc.client.post(
        "/console/new/lists",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Do not call",
            "kind": "block",
            "numbers": "+13035550103",
        },
        files={"numbers_csv": ("dnc.csv", csv_file, "text/csv")},
    )
    assert created.status_code == 303, created.text
    (stored,) = (await svc.client.get("/api/v1/caller-lists", headers=admin)).json()
    listed = (await svc.client.get(f"/api/v1/caller-lists/{stored['id']}", headers=admin)).json()
    assert sorted(listed["numbers"]) == ["+12125550101", "+13035550103", "+13125550102"]

    targets = (await svc.client.get("/api/v1/targets", headers=admin)).json()
    page = await svc.client.get("/console/new/groups")
    assert all(t["name"] in html.unescape(page.text) for t in targets)
    group = await svc.client.post(
        "/console/new/groups",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Shared",
            "timezone": "UTC",
            "daily_cap": "5",
            "target_ids": [str(targets[0]["id"]), str(targets[2]["id"])],
        },
    )
    assert group.status_code == 303, group.text
    groups = (await svc.client.get("/api/v1/target-groups", headers=admin)).json()
    shared = next(g for g in groups if g["name"] == "Shared")
    assert (shared["daily_cap"], shared["target_ids"]) == (5, [targets[0]["id"], targets[2]["id"]])
    listing = await svc.client.get("/console/campaigns")
    assert "Do not call" in listing.text
    assert "Shared" in listing.text


async def test_a_pixels_deliveries_are_listed_and_sent_again(make_service: Any) -> None:
    async with make_service(seed_demo=True, buyer_allow_networks=["127.0.0.0/8"]) as svc:
        demo = await svc.demo()
        await sign_in(svc.client, demo["email"], demo["password"])
        new = f"/console/campaigns/{demo['campaign_id']}/pixels/new"
        made = await post_form(
            svc.client,
            new,
            {
                "name": "Tell the CRM",
                "event": "reserved",
                "method": "POST",
                "url": "http://127.0.0.1:9/hook?caller=[caller_number]",
                "headers": "X-Token: t-1",
                "content_type": "application/json",
                "body": '{"payout": "[payout]"}',
                "enabled": "on",
            },
        )
        assert made.status_code == 303, made.text
        await svc.client.post(
            "/rtbs.json",
            params={
                "key": demo["key"],
                "publisher_id": demo["publisher_id"],
                "caller_number": "+12125550123",
            },
        )
        admin = {"Authorization": f"Bearer {demo['admin_token']}"}
        (pixel,) = (await svc.client.get("/api/v1/webhooks", headers=admin)).json()
        assert pixel["headers"] == {"X-Token": "t-1"}
        log = await svc.client.get(f"/console/pixels/{pixel['id']}/deliveries")
        assert "hook?caller=%2B12125550123" in log.text
        delivery = re.search(r"deliveries/([0-9a-f-]{36})/resend", log.text)
        assert delivery is not None
        again = await svc.client.post(
            f"/console/pixels/{pixel['id']}/deliveries/{delivery.group(1)}/resend",
            data={"csrf_token": csrf_of(log.text)},
        )
        assert again.status_code == 303
        found = await svc.client.get(f"/api/v1/webhooks/{pixel['id']}/deliveries", headers=admin)
        assert len(found.json()) == 2
        assert {d["url"] for d in found.json()} == {"http://127.0.0.1:9/hook?caller=%2B12125550123"}
