"""The admin REST API under /api/v1 through HTTP: CRUD, validation, auth, tenant isolation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from starlette.requests import Request

from callbid.adapters.storage import tables as t
from callbid.api.admin.numbers import save_number
from callbid.domain.errors import Conflict
from callbid.service.companies import create_company
from tests.conftest import Service

API = "/api/v1"


@dataclass
class Tenant:
    """A company and a client speaking with its token."""

    id: int
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, API + path, headers=self.headers, **kwargs)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self.ok("POST", path, 201, json=body)
        return created

    async def fails(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        assert body["status"] == "failed"
        return body


async def tenant(svc: Service, name: str) -> Tenant:
    company_id, token = await create_company(svc.runtime.sessions, name)
    return Tenant(company_id, svc.client, {"Authorization": f"Bearer {token}"})


@pytest.fixture
async def a(service: Service) -> Tenant:
    return await tenant(service, "Acme")


@pytest.fixture
async def b(service: Service) -> Tenant:
    return await tenant(service, "Bravo")


async def campaign(t: Tenant, **body: Any) -> dict[str, Any]:
    return await t.create("/campaigns", {"name": "Solar", **body})


async def target(t: Tenant, **body: Any) -> dict[str, Any]:
    return await t.create("/targets", {"name": "Buyer", "destination": "+12125550100", **body})


async def rtb_key(t: Tenant, campaign_id: int, **body: Any) -> dict[str, Any]:
    return await t.create("/rtb-keys", {"campaign_id": campaign_id, **body})


# --- auth and company ----------------------------------------------------------------------


async def test_requests_without_a_valid_token_are_refused(service: Service, a: Tenant) -> None:
    missing = await service.client.get(f"{API}/campaigns")
    assert missing.status_code == 401
    assert missing.json()["status"] == "failed"
    wrong = await service.client.get(
        f"{API}/campaigns", headers={"Authorization": "Bearer cbk_not-a-token"}
    )
    assert wrong.status_code == 401
    scheme = await service.client.get(f"{API}/company", headers={"Authorization": "Basic abc"})
    assert scheme.status_code == 401
    post = await service.client.post(f"{API}/campaigns", json={"name": "x"})
    assert post.status_code == 401


async def test_company_is_read_and_renamed(a: Tenant, b: Tenant) -> None:
    company = await a.ok("GET", "/company")
    assert company["id"] == a.id
    assert company["name"] == "Acme"
    renamed = await a.ok("PATCH", "/company", json={"name": "  Acme Leads "})
    assert renamed["name"] == "Acme Leads"
    assert (await a.ok("GET", "/company"))["name"] == "Acme Leads"
    assert (await b.ok("GET", "/company"))["name"] == "Bravo"
    await a.fails("PATCH", "/company", 422, json={"name": ""})
    await a.fails("PATCH", "/company", 422, json={"name": None})
    await a.fails("PATCH", "/company", 422, json={"token_hash": "x"})


# --- CRUD round trips ----------------------------------------------------------------------


async def test_campaign_round_trip(a: Tenant) -> None:
    t1, t2 = await target(a), await target(a, name="Second")
    blocked = await a.create("/caller-lists", {"name": "DNC", "numbers": ["2125550199"]})
    created = await campaign(a, target_ids=[t2["id"], t1["id"]], blocked_list_ids=[blocked["id"]])
    assert created["routing_strategy"] == "priority"
    assert created["target_ids"] == sorted([t1["id"], t2["id"]])
    assert created["blocked_list_ids"] == [blocked["id"]]
    assert "created_at" in created
    path = f"/campaigns/{created['id']}"
    assert await a.ok("GET", path) == created
    assert await a.ok("GET", "/campaigns") == [created]
    patched = await a.ok("PATCH", path, json={"routing_strategy": "bid", "target_ids": [t1["id"]]})
    assert patched["routing_strategy"] == "bid"
    assert patched["target_ids"] == [t1["id"]]
    assert patched["name"] == "Solar"
    assert patched["blocked_list_ids"] == [blocked["id"]]
    await a.fails("PATCH", path, 422, json={"routing_strategy": "random"})
    allow = await a.create("/caller-lists", {"name": "VIP", "kind": "allow"})
    await a.fails("PATCH", path, 422, json={"blocked_list_ids": [allow["id"]]})
    assert (await a.ok("PATCH", path, json={"blocked_list_ids": []}))["blocked_list_ids"] == []
    await a.ok("DELETE", path, 204)
    await a.fails("GET", path, 404)
    await a.fails("DELETE", path, 404)
    assert await a.ok("GET", f"/targets/{t1['id']}")


async def test_campaign_refuses_allow_lists_as_blocked_lists(a: Tenant) -> None:
    allow = await a.create("/caller-lists", {"name": "VIP", "kind": "allow"})
    body = await a.fails(
        "POST", "/campaigns", 422, json={"name": "x", "blocked_list_ids": [allow["id"]]}
    )
    assert "blocked_list_ids" in body["info"]


async def test_number_pools_and_tracking_numbers_round_trip(a: Tenant) -> None:
    c1, c2 = await campaign(a), await campaign(a, name="Other")
    pool = await a.create("/number-pools", {"campaign_id": c1["id"], "name": "No caller"})
    assert pool == {"id": pool["id"], "campaign_id": c1["id"], "name": "No caller"}
    number = await a.create(
        "/tracking-numbers", {"campaign_id": c1["id"], "number": "(212) 555-0101"}
    )
    assert number["number"] == "+12125550101"
    assert number["pool_id"] is None
    pooled = await a.create(
        "/tracking-numbers",
        {"campaign_id": c1["id"], "number": "+1 212 555 0102", "pool_id": pool["id"]},
    )
    assert pooled["pool_id"] == pool["id"]
    listed = await a.ok("GET", "/tracking-numbers", params={"campaign_id": c1["id"]})
    assert [n["number"] for n in listed] == ["+12125550101", "+12125550102"]
    assert await a.ok("GET", "/tracking-numbers", params={"campaign_id": c2["id"]}) == []
    assert await a.ok("GET", "/number-pools", params={"campaign_id": c1["id"]}) == [pool]

    path = f"/tracking-numbers/{number['id']}"
    changed = await a.ok("PATCH", path, json={"number": "2125550103", "pool_id": pool["id"]})
    assert changed["number"] == "+12125550103"
    assert changed["pool_id"] == pool["id"]
    await a.fails("PATCH", path, 422, json={"number": "12345"})
    moved = await a.fails("PATCH", path, 422, json={"campaign_id": c2["id"]})
    assert "pool_id" in moved["info"]
    moved_out = await a.ok("PATCH", path, json={"campaign_id": c2["id"], "pool_id": None})
    assert moved_out["campaign_id"] == c2["id"]

    pool_path = f"/number-pools/{pool['id']}"
    await a.fails("PATCH", pool_path, 409, json={"campaign_id": c2["id"]})
    empty = await a.create("/number-pools", {"campaign_id": c1["id"], "name": "Empty"})
    moved_pool = await a.ok("PATCH", f"/number-pools/{empty['id']}", json={"campaign_id": c2["id"]})
    assert moved_pool["campaign_id"] == c2["id"]
    assert (await a.ok("PATCH", pool_path, json={"name": "Pool"}))["name"] == "Pool"
    await a.ok("DELETE", pool_path, 204)
    assert (await a.ok("GET", f"/tracking-numbers/{pooled['id']}"))["pool_id"] is None
    await a.ok("DELETE", path, 204)
    await a.fails("GET", path, 404)


async def test_tracking_numbers_are_globally_unique(a: Tenant, b: Tenant) -> None:
    ca, cb = await campaign(a), await campaign(b)
    await a.create("/tracking-numbers", {"campaign_id": ca["id"], "number": "+12125550111"})
    again = await a.fails(
        "POST", "/tracking-numbers", 409, json={"campaign_id": ca["id"], "number": "2125550111"}
    )
    assert "+12125550111" in again["info"]
    await b.fails(
        "POST", "/tracking-numbers", 409, json={"campaign_id": cb["id"], "number": "+12125550111"}
    )
    other = await a.create("/tracking-numbers", {"campaign_id": ca["id"], "number": "2125550112"})
    await a.fails("PATCH", f"/tracking-numbers/{other['id']}", 409, json={"number": "+12125550111"})


async def test_another_companys_number_is_not_confirmed_to_exist(a: Tenant, b: Tenant) -> None:
    ca, cb = await campaign(a), await campaign(b)
    await a.create("/tracking-numbers", {"campaign_id": ca["id"], "number": "+12125550131"})
    taken = await b.fails(
        "POST", "/tracking-numbers", 409, json={"campaign_id": cb["id"], "number": "2125550131"}
    )
    assert taken == {"status": "failed", "info": "number +12125550131 is not available"}
    assert "tracking number" not in taken["info"]
    own = await b.create("/tracking-numbers", {"campaign_id": cb["id"], "number": "2125550132"})
    moved = await b.fails(
        "PATCH", f"/tracking-numbers/{own['id']}", 409, json={"number": "+12125550131"}
    )
    assert moved == taken
    # The owner is still told precisely.
    again = await a.fails(
        "POST", "/tracking-numbers", 409, json={"campaign_id": ca["id"], "number": "2125550131"}
    )
    assert again["info"] == "+12125550131 is already a tracking number"


async def test_a_number_taken_meanwhile_is_answered_the_same(
    service: Service, a: Tenant, b: Tenant
) -> None:
    ca, cb = await campaign(a), await campaign(b)
    await a.create("/tracking-numbers", {"campaign_id": ca["id"], "number": "+12125550133"})
    # B's change got past the check before A's commit: the unique index refuses it.
    async with service.runtime.sessions() as session:
        session.add(t.TrackingNumber(company_id=b.id, campaign_id=cb["id"], number="+12125550133"))
        with pytest.raises(Conflict) as refused:
            await save_number(session, cast(Request, None), b.id, "+12125550133")
    assert refused.value.info == "number +12125550133 is not available"


async def test_pool_of_another_campaign_is_refused(a: Tenant) -> None:
    c1, c2 = await campaign(a), await campaign(a)
    pool = await a.create("/number-pools", {"campaign_id": c2["id"], "name": "p"})
    body = await a.fails(
        "POST",
        "/tracking-numbers",
        422,
        json={"campaign_id": c1["id"], "number": "+12125550120", "pool_id": pool["id"]},
    )
    assert "pool_id" in body["info"]


FULL_TARGET: dict[str, Any] = {
    "name": "Big buyer",
    "destination": "sip:buyer@sip.example.com",
    "priority": 0,
    "weight": 3,
    "paused": True,
    "timezone": "America/New_York",
    "hours": [
        {"days": [4, 0, 1], "open": "9:00", "close": "17:30"},
        {"days": [5], "open": "22:00", "close": "02:00"},
        {"days": [6], "open": "00:00", "close": "24:00"},
    ],
    "cap_trigger": "conversion",
    "filters": [
        {"tag": "Caller_State", "op": "in", "values": ["CA", "NY"]},
        {"tag": "age", "op": "greater_than", "values": ["64"]},
        {"tag": "jornaya_lead_id", "op": "exists"},
    ],
    "ring_timeout": 45,
    "dedupe_seconds": 3600,
    "concurrency_cap": 2,
    "hourly_cap": 0,
    "daily_cap": 10,
    "monthly_cap": None,
    "lifetime_cap": 500,
}


async def test_target_round_trip(a: Tenant) -> None:
    group = await a.create("/target-groups", {"name": "Shared"})
    allow = await a.create("/caller-lists", {"name": "VIP", "kind": "allow"})
    created = await a.create(
        "/targets", {**FULL_TARGET, "group_ids": [group["id"]], "caller_list_id": allow["id"]}
    )
    assert created["hours"][0] == {"days": [0, 1, 4], "open": "09:00", "close": "17:30"}
    assert created["hours"][2]["close"] == "24:00"
    assert created["filters"][0] == {"tag": "caller_state", "op": "in", "values": ["CA", "NY"]}
    assert created["filters"][2]["values"] == []
    for name in ("priority", "weight", "paused", "timezone", "cap_trigger", "ring_timeout"):
        assert created[name] == FULL_TARGET[name]
    assert created["group_ids"] == [group["id"]]
    assert created["caller_list_id"] == allow["id"]
    path = f"/targets/{created['id']}"
    assert await a.ok("GET", path) == created
    assert await a.ok("GET", "/targets") == [created]
    assert (await a.ok("GET", f"/target-groups/{group['id']}"))["target_ids"] == [created["id"]]

    patched = await a.ok(
        "PATCH",
        path,
        json={"paused": False, "daily_cap": None, "destination": "212.555.0177", "group_ids": []},
    )
    assert patched["paused"] is False
    assert patched["daily_cap"] is None
    assert patched["lifetime_cap"] == 500
    assert patched["destination"] == "+12125550177"
    assert patched["group_ids"] == []
    assert patched["hours"] == created["hours"]
    c = await campaign(a, target_ids=[created["id"]])
    await a.ok("DELETE", path, 204)
    await a.fails("GET", path, 404)
    assert (await a.ok("GET", f"/campaigns/{c['id']}"))["target_ids"] == []


async def test_target_defaults(a: Tenant) -> None:
    created = await target(a)
    assert created["priority"] == 1
    assert created["weight"] == 1
    assert created["timezone"] == "UTC"
    assert created["hours"] == []
    assert created["filters"] == []
    assert created["cap_trigger"] == "connect"
    assert created["concurrency_cap"] is None
    assert created["ring_timeout"] == 30


BAD_TARGETS: list[tuple[dict[str, Any], str]] = [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": "../etc/passwd"}, "timezone"),
    ({"timezone": "America"}, "timezone"),
    ({"hours": [{"days": [7], "open": "09:00", "close": "17:00"}]}, "hours"),
    ({"hours": [{"days": [1], "open": "25:00", "close": "17:00"}]}, "hours"),
    ({"hours": [{"days": [1], "open": "9", "close": "17:00"}]}, "hours"),
    ({"hours": [{"days": [1], "open": "24:00", "close": "02:00"}]}, "hours"),
    ({"hours": [{"days": [], "open": "09:00", "close": "17:00"}]}, "hours"),
    ({"hours": [{"days": [1], "open": "09:00", "close": "17:00", "tz": "x"}]}, "hours"),
    ({"destination": "12345"}, "destination"),
    ({"destination": "sip:"}, "destination"),
    ({"destination": "http://buyer.example.com"}, "destination"),
    ({"filters": [{"tag": "state", "op": "like", "values": ["CA"]}]}, "filters"),
    ({"filters": [{"tag": "state", "op": "equals", "values": []}]}, "filters"),
    ({"filters": [{"tag": "state", "op": "in"}]}, "filters"),
    ({"filters": [{"tag": "state", "op": "equals", "values": ["a", "b"]}]}, "filters"),
    ({"filters": [{"tag": "age", "op": "less_than", "values": ["old"]}]}, "filters"),
    ({"filters": [{"tag": "state", "op": "exists", "values": ["x"]}]}, "filters"),
    ({"filters": [{"tag": " ", "op": "exists"}]}, "filters"),
    ({"daily_cap": -1}, "daily_cap"),
    ({"concurrency_cap": -5}, "concurrency_cap"),
    ({"weight": 0}, "weight"),
    ({"priority": -1}, "priority"),
    ({"cap_trigger": "dial"}, "cap_trigger"),
    ({"unknown_field": 1}, "unknown_field"),
]


async def test_target_validation(a: Tenant) -> None:
    existing = await target(a)
    for change, field in BAD_TARGETS:
        body = {"name": "Buyer", "destination": "+12125550100", **change}
        created = await a.fails("POST", "/targets", 422, json=body)
        assert field in created["info"], change
        assert created["errors"], change
        patched = await a.fails("PATCH", f"/targets/{existing['id']}", 422, json=change)
        assert field in patched["info"], change
    assert await a.ok("GET", "/targets") == [existing]


async def test_patch_refuses_null_for_required_fields(a: Tenant) -> None:
    existing = await target(a)
    for field in ("name", "destination", "weight", "paused", "hours", "timezone", "group_ids"):
        answer = await a.fails("PATCH", f"/targets/{existing['id']}", 422, json={field: None})
        assert field in answer["info"]


async def test_target_group_round_trip(a: Tenant) -> None:
    t1, t2 = await target(a), await target(a)
    created = await a.create(
        "/target-groups",
        {
            "name": "Network",
            "timezone": "Europe/London",
            "daily_cap": 50,
            "target_ids": [t2["id"], t1["id"]],
        },
    )
    assert created["target_ids"] == sorted([t1["id"], t2["id"]])
    assert created["daily_cap"] == 50
    assert created["hourly_cap"] is None
    path = f"/target-groups/{created['id']}"
    assert await a.ok("GET", path) == created
    assert await a.ok("GET", "/target-groups") == [created]
    assert (await a.ok("GET", f"/targets/{t1['id']}"))["group_ids"] == [created["id"]]
    patched = await a.ok("PATCH", path, json={"target_ids": [t1["id"]], "hourly_cap": 5})
    assert patched["target_ids"] == [t1["id"]]
    assert patched["hourly_cap"] == 5
    assert patched["daily_cap"] == 50
    await a.fails("PATCH", path, 422, json={"timezone": "Nowhere/Land"})
    await a.fails("PATCH", path, 422, json={"monthly_cap": -3})
    await a.ok("DELETE", path, 204)
    await a.fails("GET", path, 404)
    assert (await a.ok("GET", f"/targets/{t1['id']}"))["group_ids"] == []


async def test_publisher_round_trip_and_duplicates(a: Tenant, b: Tenant) -> None:
    created = await a.create(
        "/publishers",
        {
            "publisher_id": "4321ABCD",
            "name": "Affiliate",
            "timezone": "America/Chicago",
            "hours": [{"days": [0, 1, 2, 3, 4], "open": "08:00", "close": "20:00"}],
            "daily_cap": 100,
        },
    )
    assert created["blocked"] is False
    path = f"/publishers/{created['id']}"
    assert await a.ok("GET", path) == created
    assert await a.ok("GET", "/publishers") == [created]
    await a.fails("POST", "/publishers", 409, json={"publisher_id": "4321ABCD"})
    await b.create("/publishers", {"publisher_id": "4321ABCD"})
    other = await a.create("/publishers", {"publisher_id": "other"})
    await a.fails("PATCH", f"/publishers/{other['id']}", 409, json={"publisher_id": "4321ABCD"})
    await a.fails("POST", "/publishers", 422, json={"publisher_id": ""})
    await a.fails("POST", "/publishers", 422, json={"publisher_id": "x" * 101})
    await a.fails("POST", "/publishers", 422, json={"publisher_id": "p", "timezone": "EST5"})
    patched = await a.ok("PATCH", path, json={"blocked": True, "publisher_id": "4321ABCD"})
    assert patched["blocked"] is True
    await a.ok("DELETE", path, 204)
    await a.fails("GET", path, 404)


async def test_conversion_criterion_round_trip(a: Tenant) -> None:
    c = await campaign(a)
    created = await a.create(
        "/conversion-criteria",
        {
            "campaign_id": c["id"],
            "name": "Main",
            "publisher_id": "4321ABCD",
            "payout": 120.0,
            "revenue": 30,
            "buffer_seconds": 90,
            "conditions": [{"tag": "caller_state", "op": "not_in", "values": ["TX"]}],
            "dedupe_seconds": 86400,
        },
    )
    assert created["payout_kind"] == "fixed"
    assert created["position"] == 0
    assert created["revenue"] == 30.0
    path = f"/conversion-criteria/{created['id']}"
    assert await a.ok("GET", path) == created
    assert await a.ok("GET", "/conversion-criteria", params={"campaign_id": c["id"]}) == [created]
    await a.fails("PATCH", path, 422, json={"payout_kind": "revshare"})
    patched = await a.ok(
        "PATCH", path, json={"payout_kind": "revshare", "payout": 40, "publisher_id": None}
    )
    assert patched["payout_kind"] == "revshare"
    assert patched["publisher_id"] is None
    await a.fails("PATCH", path, 422, json={"payout": 100.5})
    await a.fails("PATCH", path, 422, json={"payout": -1})
    await a.fails("PATCH", path, 422, json={"buffer_seconds": -1})
    await a.fails("PATCH", path, 422, json={"conditions": [{"tag": "x", "op": "nope"}]})
    other = await campaign(a, name="Other")
    assert (await a.ok("PATCH", path, json={"campaign_id": other["id"]}))["campaign_id"] == other[
        "id"
    ]
    await a.ok("DELETE", path, 204)
    await a.fails("GET", path, 404)


async def test_conversion_criterion_validation(a: Tenant) -> None:
    c = await campaign(a)
    base = {"campaign_id": c["id"]}
    await a.fails("POST", "/conversion-criteria", 422, json={**base, "payout": -0.01})
    await a.fails("POST", "/conversion-criteria", 422, json={**base, "revenue": -1})
    await a.fails(
        "POST", "/conversion-criteria", 422, json={**base, "payout_kind": "revshare", "payout": 101}
    )
    await a.fails("POST", "/conversion-criteria", 422, json={**base, "dedupe_seconds": -1})
    await a.fails("POST", "/conversion-criteria", 422, json={"payout": 1})
    await a.fails("POST", "/conversion-criteria", 404, json={"campaign_id": 999999})


async def test_rtb_key_round_trip(a: Tenant) -> None:
    c = await campaign(a)
    await a.create("/tracking-numbers", {"campaign_id": c["id"], "number": "+12125550130"})
    created = await rtb_key(a, c["id"], name="Main", inbound_number="(212) 555-0130")
    assert uuid.UUID(created["key"]).version == 4
    assert created["inbound_number"] == "+12125550130"
    assert created["ttl_seconds"] == 15
    assert created["timeout_seconds"] == 5.0
    assert created["shield_scope"] == "key"
    assert created["rate_per_second"] is None
    assert created["rate_burst"] >= 1
    path = f"/rtb-keys/{created['key']}"
    assert await a.ok("GET", path) == created
    assert await a.ok("GET", "/rtb-keys", params={"campaign_id": c["id"]}) == [created]
    patched = await a.ok(
        "PATCH",
        path,
        json={
            "paused": True,
            "ttl_seconds": 60,
            "shield_scope": "campaign",
            "rate_per_second": 2.5,
        },
    )
    assert patched["paused"] is True
    assert patched["ttl_seconds"] == 60
    assert patched["shield_scope"] == "campaign"
    assert patched["inbound_number"] == "+12125550130"
    await a.fails("PATCH", path, 422, json={"key": str(uuid.uuid4())})
    number_id = (await a.ok("GET", "/tracking-numbers"))[0]["id"]
    await a.fails("DELETE", f"/tracking-numbers/{number_id}", 409)
    await a.fails("PATCH", f"/tracking-numbers/{number_id}", 409, json={"number": "2125550131"})
    cleared = await a.ok("PATCH", path, json={"inbound_number": None})
    assert cleared["inbound_number"] is None
    await a.ok("DELETE", f"/tracking-numbers/{number_id}", 204)
    await a.ok("DELETE", path, 204)
    await a.fails("GET", path, 404)


BAD_KEYS: list[dict[str, Any]] = [
    {"ttl_seconds": 0},
    {"ttl_seconds": 3601},
    {"timeout_seconds": 0.01},
    {"timeout_seconds": 31},
    {"rate_per_second": 0},
    {"rate_burst": 0},
    {"shield_scope": "global"},
    {"inbound_number": "not a number"},
    {"inbound_number": "+12125550199"},
    {"key": "00000000-0000-4000-8000-000000000000"},
]


async def test_rtb_key_validation(a: Tenant) -> None:
    c = await campaign(a)
    for change in BAD_KEYS:
        body = await a.fails("POST", "/rtb-keys", 422, json={"campaign_id": c["id"], **change})
        assert next(iter(change)) in body["info"], change
    assert await a.ok("GET", "/rtb-keys") == []


async def test_rtb_key_inbound_number_must_be_of_its_campaign(a: Tenant) -> None:
    c1, c2 = await campaign(a), await campaign(a)
    await a.create("/tracking-numbers", {"campaign_id": c2["id"], "number": "+12125550140"})
    await a.fails(
        "POST", "/rtb-keys", 422, json={"campaign_id": c1["id"], "inbound_number": "2125550140"}
    )
    key = await rtb_key(a, c2["id"], inbound_number="2125550140")
    await a.fails("PATCH", f"/rtb-keys/{key['key']}", 422, json={"campaign_id": c1["id"]})


async def test_caller_list_round_trip(a: Tenant) -> None:
    created = await a.create(
        "/caller-lists",
        {"name": "DNC", "numbers": ["2125550150", "+1 212 555 0150", "+447911123456"]},
    )
    assert created["kind"] == "block"
    assert created["numbers"] == ["+12125550150", "+447911123456"]
    path = f"/caller-lists/{created['id']}"
    assert await a.ok("GET", path) == created
    assert await a.ok("GET", "/caller-lists") == [
        {"id": created["id"], "name": "DNC", "kind": "block", "number_count": 2}
    ]
    bad = await a.fails("PATCH", path, 422, json={"numbers": ["2125550151", "nope", "12"]})
    assert [e["loc"][-1] for e in bad["errors"]] == ["1", "2"]
    patched = await a.ok("PATCH", path, json={"numbers": ["2125550151"], "name": "Blocked"})
    assert patched["numbers"] == ["+12125550151"]
    assert patched["name"] == "Blocked"
    c = await campaign(a, blocked_list_ids=[created["id"]])
    await a.fails("PATCH", path, 409, json={"kind": "allow"})
    t = await target(a, caller_list_id=created["id"])
    await a.ok("DELETE", path, 204)
    await a.fails("GET", path, 404)
    assert (await a.ok("GET", f"/campaigns/{c['id']}"))["blocked_list_ids"] == []
    assert (await a.ok("GET", f"/targets/{t['id']}"))["caller_list_id"] is None


async def test_caller_list_limits(a: Tenant) -> None:
    await a.fails("POST", "/caller-lists", 422, json={"name": "x", "kind": "maybe"})
    await a.fails("POST", "/caller-lists", 422, json={"name": "x", "numbers": ["1"] * 100_001})
    numbers = [f"+1212555{i:04d}" for i in range(1200)]
    big = await a.create("/caller-lists", {"name": "big", "numbers": numbers})
    assert len(big["numbers"]) == 1200


# --- tenant isolation ----------------------------------------------------------------------


async def build_everything(t: Tenant) -> dict[str, str]:
    """One object of every kind; returns their paths."""
    tgt = await target(t)
    group = await t.create("/target-groups", {"name": "g", "target_ids": [tgt["id"]]})
    lst = await t.create("/caller-lists", {"name": "l"})
    c = await campaign(t, target_ids=[tgt["id"]], blocked_list_ids=[lst["id"]])
    pool = await t.create("/number-pools", {"campaign_id": c["id"], "name": "p"})
    num = await t.create("/tracking-numbers", {"campaign_id": c["id"], "number": "+12125550160"})
    pub = await t.create("/publishers", {"publisher_id": "p1"})
    crit = await t.create("/conversion-criteria", {"campaign_id": c["id"]})
    key = await rtb_key(t, c["id"])
    return {
        "target": f"/targets/{tgt['id']}",
        "group": f"/target-groups/{group['id']}",
        "list": f"/caller-lists/{lst['id']}",
        "campaign": f"/campaigns/{c['id']}",
        "pool": f"/number-pools/{pool['id']}",
        "number": f"/tracking-numbers/{num['id']}",
        "publisher": f"/publishers/{pub['id']}",
        "criterion": f"/conversion-criteria/{crit['id']}",
        "key": f"/rtb-keys/{key['key']}",
    }


PATCHES = {
    "target": {"name": "stolen"},
    "group": {"name": "stolen"},
    "list": {"name": "stolen"},
    "campaign": {"name": "stolen"},
    "pool": {"name": "stolen"},
    "number": {"pool_id": None},
    "publisher": {"name": "stolen"},
    "criterion": {"name": "stolen"},
    "key": {"name": "stolen"},
}


async def test_other_companies_objects_are_404(a: Tenant, b: Tenant) -> None:
    paths = await build_everything(a)
    for kind, path in paths.items():
        before = await a.ok("GET", path)
        await b.fails("GET", path, 404)
        await b.fails("PATCH", path, 404, json=PATCHES[kind])
        await b.fails("DELETE", path, 404)
        assert await a.ok("GET", path) == before
    for listing in (
        "/campaigns",
        "/targets",
        "/target-groups",
        "/caller-lists",
        "/number-pools",
        "/tracking-numbers",
        "/publishers",
        "/conversion-criteria",
        "/rtb-keys",
    ):
        assert await b.ok("GET", listing) == []
        assert len(await a.ok("GET", listing)) == 1


async def made(t: Tenant, collection: str, body: dict[str, Any]) -> str:
    """The path of a new object of `collection`."""
    return f"{collection}/{(await t.create(collection, body))['id']}"


async def test_references_to_other_companies_objects_are_404(a: Tenant, b: Tenant) -> None:
    paths = await build_everything(a)
    ids = {kind: path.rsplit("/", 1)[1] for kind, path in paths.items()}
    tid, gid, lid, cid, pid = (int(ids[k]) for k in ("target", "group", "list", "campaign", "pool"))
    mine = await campaign(b)
    mine_target = await target(b)
    refused: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/campaigns", {"name": "x", "target_ids": [tid]}, "target_ids"),
        ("POST", "/campaigns", {"name": "x", "blocked_list_ids": [lid]}, "blocked_list_ids"),
        (
            "PATCH",
            f"/campaigns/{mine['id']}",
            {"target_ids": [mine_target["id"], tid]},
            "target_ids",
        ),
        (
            "POST",
            "/targets",
            {"name": "x", "destination": "+12125550100", "group_ids": [gid]},
            "group_ids",
        ),
        (
            "POST",
            "/targets",
            {"name": "x", "destination": "+12125550100", "caller_list_id": lid},
            "caller_list_id",
        ),
        ("PATCH", f"/targets/{mine_target['id']}", {"caller_list_id": lid}, "caller_list_id"),
        ("POST", "/target-groups", {"name": "x", "target_ids": [tid]}, "target_ids"),
        ("POST", "/number-pools", {"name": "x", "campaign_id": cid}, "campaign_id"),
        (
            "POST",
            "/tracking-numbers",
            {"campaign_id": cid, "number": "+12125550170"},
            "campaign_id",
        ),
        (
            "POST",
            "/tracking-numbers",
            {"campaign_id": mine["id"], "number": "+12125550170", "pool_id": pid},
            "pool_id",
        ),
        ("POST", "/conversion-criteria", {"campaign_id": cid}, "campaign_id"),
        ("POST", "/rtb-keys", {"campaign_id": cid}, "campaign_id"),
        ("POST", "/rtb-keys", {"campaign_id": 987654}, "campaign_id"),
    ]
    for method, path, body, field in refused:
        answer = await b.fails(method, path, 404, json=body)
        assert field in answer["info"], (path, answer)
    mid = {"campaign_id": mine["id"]}
    b_paths = {
        "key": f"/rtb-keys/{(await rtb_key(b, mine['id']))['key']}",
        "criterion": await made(b, "/conversion-criteria", mid),
        "pool": await made(b, "/number-pools", {**mid, "name": "p"}),
        "number": await made(b, "/tracking-numbers", {**mid, "number": "+12125550171"}),
        "group": await made(b, "/target-groups", {"name": "g"}),
    }
    patches: list[tuple[str, dict[str, Any], str]] = [
        (b_paths["key"], {"campaign_id": cid}, "campaign_id"),
        (b_paths["criterion"], {"campaign_id": cid}, "campaign_id"),
        (b_paths["pool"], {"campaign_id": cid}, "campaign_id"),
        (b_paths["number"], {"campaign_id": cid}, "campaign_id"),
        (b_paths["number"], {"pool_id": pid}, "pool_id"),
        (b_paths["group"], {"target_ids": [tid]}, "target_ids"),
        (f"/campaigns/{mine['id']}", {"blocked_list_ids": [lid]}, "blocked_list_ids"),
        (f"/targets/{mine_target['id']}", {"group_ids": [gid]}, "group_ids"),
    ]
    for path, body, field in patches:
        answer = await b.fails("PATCH", path, 404, json=body)
        assert field in answer["info"], (path, answer)
    assert (await a.ok("GET", paths["target"]))["group_ids"] == [gid]
    assert (await a.ok("GET", paths["group"]))["target_ids"] == [tid]
    assert len(await b.ok("GET", "/target-groups")) == 1


async def test_ids_out_of_range_are_not_found(a: Tenant) -> None:
    await a.fails("GET", "/campaigns/0", 404)
    await a.fails("GET", "/campaigns/-3", 404)
    await a.fails("GET", f"/campaigns/{2**40}", 404)
    await a.fails("DELETE", f"/targets/{2**63}", 404)
    await a.fails("GET", "/campaigns/abc", 422)
    await a.fails("POST", "/campaigns", 422, json={"name": "x", "target_ids": [2**40]})
    await a.fails("GET", "/rtb-keys/not-a-key", 404)


# --- cache invalidation and documentation --------------------------------------------------


async def test_writes_drop_cached_ping_configuration(service: Service, a: Tenant) -> None:
    buyer = await target(a)
    c = await campaign(a, target_ids=[buyer["id"]])
    key = (await rtb_key(a, c["id"]))["key"]
    config = await service.runtime.configs.get(key)
    assert config is not None
    assert [t.name for t in config.campaign.targets] == ["Buyer"]
    assert config.key.ttl_seconds == 15

    await a.ok("PATCH", f"/targets/{buyer['id']}", json={"name": "Renamed", "paused": True})
    config = await service.runtime.configs.get(key)
    assert config is not None
    assert [(t.name, t.paused) for t in config.campaign.targets] == [("Renamed", True)]

    await a.ok("PATCH", f"/rtb-keys/{key}", json={"ttl_seconds": 30})
    config = await service.runtime.configs.get(key)
    assert config is not None
    assert config.key.ttl_seconds == 30

    await a.ok("PATCH", f"/campaigns/{c['id']}", json={"target_ids": []})
    config = await service.runtime.configs.get(key)
    assert config is not None
    assert config.campaign.targets == ()

    await a.ok("DELETE", f"/rtb-keys/{key}", 204)
    assert await service.runtime.configs.get(key) is None


async def test_failed_writes_change_nothing(a: Tenant) -> None:
    c = await campaign(a)
    await a.fails("PATCH", f"/campaigns/{c['id']}", 404, json={"target_ids": [424242], "name": "y"})
    assert await a.ok("GET", f"/campaigns/{c['id']}") == c


async def test_openapi_documents_the_admin_api(service: Service) -> None:
    spec = (await service.client.get("/openapi.json")).json()
    paths = [p for p in spec["paths"] if p.startswith(API)]
    for expected in ("company", "campaigns", "targets", "rtb-keys", "calls", "webhooks"):
        assert f"{API}/{expected}" in paths, expected
    for path in paths:
        for operation in spec["paths"][path].values():
            assert operation.get("summary"), path
    target_schema = spec["components"]["schemas"]["TargetCreate"]
    assert target_schema["additionalProperties"] is False
    assert target_schema["properties"]["destination"]["description"]
    update = spec["components"]["schemas"]["TargetUpdate"]
    assert "required" not in update
    assert "default" not in update["properties"]["name"]
    docs = await service.client.get("/docs")
    assert docs.status_code == 200
