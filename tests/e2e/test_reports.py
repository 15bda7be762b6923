"""GET /api/v1/reports/summary through HTTP: real pings plus rows stored directly."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from callbid.adapters.storage import tables as t
from tests.builders import Built, build_campaign
from tests.conftest import Service

PATH = "/api/v1/reports/summary"
NY_ONLY = [{"filters": [{"tag": "caller_state", "op": "in", "values": ["NY"]}]}]
FIGURES = {
    "pings",
    "reserved",
    "confirmed",
    "claimed",
    "expired",
    "wiped",
    "calls",
    "conversions",
    "payout",
    "revenue",
    "profit",
}


@pytest.fixture
def service(any_service: Service) -> Service:
    """Every test here runs on SQLite with the in-process store and on PostgreSQL with Redis."""
    return any_service


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def report(svc: Service, built: Built, since: datetime, until: datetime, **extra: Any) -> Any:
    response = await svc.client.get(
        PATH,
        params={"since": iso(since), "until": iso(until), **extra},
        headers={"Authorization": f"Bearer {built.token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def ping(svc: Service, built: Built, caller: str, zip_code: str) -> dict[str, Any]:
    params = {"key": built.key, "publisher_id": "pub-1", "caller_number": caller}
    response = await svc.client.post("/rtbs.json", params=params | {"caller_zip": zip_code})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reservation(built: Built, at: datetime, **values: Any) -> t.Reservation:
    row: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "company_id": built.company_id,
        "campaign_id": built.campaign_id,
        "key": built.key,
        "publisher_id": "pub-2",
        "status": "claimed",
        "created_at": at,
        "expires_at": at + timedelta(seconds=15),
        "claimed_at": at + timedelta(seconds=5),
        "target_id": built.target_ids[0],
    }
    return t.Reservation(**(row | values))


def call(built: Built, at: datetime, **values: Any) -> t.Call:
    row: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "company_id": built.company_id,
        "campaign_id": built.campaign_id,
        "call_sid": "CA" + uuid.uuid4().hex,
        "dialect": "twilio",
        "dialled_number": built.numbers[0],
        "caller_number": "+12125550199",
        "publisher_id": "pub-2",
        "match": "claimed",
        "status": "ended",
        "target_id": built.target_ids[0],
        "started_at": at,
    }
    return t.Call(**(row | values))


async def store(svc: Service, *rows: t.Base) -> None:
    async with svc.runtime.sessions.begin() as session:
        session.add_all(rows)


async def test_summary_counts_pings_and_stored_rows(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions, targets=NY_ONLY, criteria=[{"payout": 12.5, "revenue": 25.0}]
    )
    other = await build_campaign(service.runtime.sessions)
    now = service.clock.now
    since, until = now - timedelta(hours=1), now + timedelta(hours=1)
    kept = await ping(service, built, "+12125550101", "10001")
    wiped = await ping(service, built, "+12125550102", "10001")
    confirmed = await ping(service, built, "+12125550103", "10001")
    refused = await ping(service, built, "+13105550104", "90210")
    assert [kept["status"], wiped["status"], refused["status"]] == [
        "reserved",
        "reserved",
        "no-target",
    ]
    params = {"key": built.key}
    assert (await service.client.delete(f"/rtbs/{wiped['uuid']}.json", params=params)).is_success
    confirm = params | {"status": "confirmed"}
    assert (await service.client.put(f"/rtbs/{confirmed['uuid']}.json", params=confirm)).is_success
    await store(
        service,
        reservation(built, now),
        reservation(built, since - timedelta(seconds=1)),
        reservation(other, now),
        call(built, now, converted=True, payout=12.5, revenue=25.004),
        call(built, now, converted=True, payout=0.333, revenue=1.0, publisher_id=None),
        call(built, now, converted=False, payout=None, match="expired"),
        call(built, until),
        call(other, now, converted=True, payout=1.0, revenue=2.0),
    )

    live = await report(service, built, since, until)
    assert set(live) == FIGURES | {"since", "until", "campaign_id", "group_by", "groups"}
    assert live["since"] == "2026-11-23T14:00:00.000Z"
    assert (live["pings"], live["reserved"], live["confirmed"]) == (5, 4, 1)
    assert (live["claimed"], live["wiped"], live["expired"]) == (1, 1, 0)
    assert (live["calls"], live["conversions"]) == (3, 2)
    assert (live["payout"], live["revenue"], live["profit"]) == (12.83, 26.0, 13.17)

    service.clock.advance(16)
    later = await report(service, built, since, until)
    assert later["expired"] == 2  # kept and confirmed: past their TTL, not yet swept
    assert later["groups"] is None


async def test_summary_by_campaign_and_by_group(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    now = service.clock.now
    since, until = now - timedelta(days=2), now + timedelta(hours=1)
    yesterday = now - timedelta(days=1)
    second = t.Campaign(company_id=built.company_id, name="second")
    await store(service, second)
    await ping(service, built, "+12125550101", "10001")
    await store(
        service,
        reservation(built, yesterday, publisher_id="pub-3"),
        reservation(built, now, campaign_id=second.id, target_id=None, expires_at=None),
        call(built, yesterday, converted=True, payout=2.0, revenue=3.0),
        call(built, now, campaign_id=second.id, publisher_id=None, target_id=None),
    )

    only = await report(service, built, since, until, campaign_id=built.campaign_id)
    assert (only["pings"], only["reserved"], only["calls"], only["conversions"]) == (2, 2, 1, 1)
    assert only["campaign_id"] == built.campaign_id

    by_day = await report(service, built, since, until, group_by="day")
    assert by_day["group_by"] == "day"
    days = {group["key"]: (group["pings"], group["calls"]) for group in by_day["groups"]}
    assert days == {"2026-11-22": (1, 1), "2026-11-23": (2, 1)}

    by_publisher = await report(service, built, since, until, group_by="publisher")
    publishers = {g["key"]: (g["pings"], g["calls"], g["payout"]) for g in by_publisher["groups"]}
    assert publishers == {
        "pub-1": (1, 0, 0.0),
        "pub-2": (1, 1, 2.0),
        "pub-3": (1, 0, 0.0),
        None: (0, 1, 0.0),
    }
    assert list(publishers)[-1] is None

    by_target = await report(service, built, since, until, group_by="target")
    targets = {group["key"]: group["reserved"] for group in by_target["groups"]}
    assert targets == {built.target_ids[0]: 2, None: 0}
    assert by_target["pings"] == 3


async def test_summary_is_the_tokens_company_only(service: Service) -> None:
    mine = await build_campaign(service.runtime.sessions)
    theirs = await build_campaign(service.runtime.sessions)
    now = service.clock.now
    await store(service, reservation(theirs, now), call(theirs, now))
    since, until = now - timedelta(hours=1), now + timedelta(hours=1)
    assert (await report(service, mine, since, until))["pings"] == 0
    foreign = await report(service, mine, since, until, campaign_id=theirs.campaign_id)
    assert (foreign["pings"], foreign["calls"]) == (0, 0)
    assert (await report(service, theirs, since, until))["pings"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"since": "2026-11-23T00:00:00Z"},
        {"since": "yesterday", "until": "2026-11-23T00:00:00Z"},
        {"since": "2026-11-23T00:00:00Z", "until": "2026-11-23T00:00:00Z"},
        {"since": "2026-11-24T00:00:00Z", "until": "2026-11-23T00:00:00Z"},
        {"since": "2026-11-23T00:00:00Z", "until": "2026-11-24T00:00:00Z", "group_by": "week"},
        {"since": "2026-11-23T00:00:00Z", "until": "2026-11-24T00:00:00Z", "campaign_id": "0"},
    ],
)
async def test_summary_refuses_bad_queries(service: Service, params: dict[str, str]) -> None:
    built = await build_campaign(service.runtime.sessions)
    headers = {"Authorization": f"Bearer {built.token}"}
    response = await service.client.get(PATH, params=params, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["status"] == "failed"


async def test_summary_needs_a_token_and_reads_naive_times_as_utc(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    window = {"since": "2026-11-23T14:00:00", "until": "2026-11-23T16:00:00+01:00"}
    assert (await service.client.get(PATH, params=window)).status_code == 401
    headers = {"Authorization": f"Bearer {built.token}"}
    body = (await service.client.get(PATH, params=window, headers=headers)).json()
    assert (body["since"], body["until"]) == (
        "2026-11-23T14:00:00.000Z",
        "2026-11-23T15:00:00.000Z",
    )


async def test_summary_is_documented(service: Service) -> None:
    schema = (await service.client.get("/openapi.json")).json()
    operation = schema["paths"][PATH]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "since",
        "until",
        "campaign_id",
        "group_by",
    }
    assert "422" in operation["responses"]
