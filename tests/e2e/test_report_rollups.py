"""Reports over purged and rolled-up reservations, through HTTP: nothing lost, nothing twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from callbid.adapters.storage import tables as t
from callbid.adapters.storage.rollups import SETTLE, watermark
from callbid.service.maintenance import purge_once
from tests.builders import build_campaign
from tests.conftest import Service
from tests.e2e.test_reports import call, ping, report, reservation, store

HOUR = 3600


@pytest.fixture
def service(any_service: Service) -> Service:
    """SQLite with the in-process store, and PostgreSQL with Redis."""
    return any_service


async def stored_reservations(svc: Service) -> int:
    async with svc.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(t.Reservation)) or 0)


async def test_purged_reservations_still_count(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    start = service.clock.now - timedelta(hours=1)
    kept = await ping(service, built, "+12125550101", "10001")
    wiped = await ping(service, built, "+12125550102", "10001")
    params = {"key": built.key}
    assert (await service.client.delete(f"/rtbs/{wiped['uuid']}.json", params=params)).is_success
    confirm = params | {"status": "confirmed"}
    assert (await service.client.put(f"/rtbs/{kept['uuid']}.json", params=confirm)).is_success
    await store(
        service,
        reservation(built, service.clock.now),
        reservation(built, service.clock.now, status="no-target", target_id=None, expires_at=None),
        call(built, service.clock.now, converted=True, payout=2.0, revenue=3.0),
    )
    service.clock.advance(25 * HOUR)
    until = service.clock.now + timedelta(hours=1)
    before = await report(service, built, start, until)
    assert (before["pings"], before["reserved"], before["expired"]) == (4, 3, 1)
    by_target = await report(service, built, start, until, group_by="target")

    assert await purge_once(service.runtime) == 4
    assert await stored_reservations(service) == 0
    assert await report(service, built, start, until) == before
    assert await report(service, built, start, until, group_by="target") == by_target
    assert await purge_once(service.runtime) == 0
    assert await report(service, built, start, until) == before  # never counted twice
    later = await report(service, built, start + timedelta(hours=2), until)
    assert (later["pings"], later["calls"]) == (0, 0)


async def test_group_by_campaign(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    second = t.Campaign(company_id=built.company_id, name="second")
    await store(service, second)
    now = service.clock.now
    await store(
        service,
        reservation(built, now - timedelta(hours=30)),
        reservation(built, now),
        reservation(
            built, now, campaign_id=second.id, target_id=None, expires_at=None, claimed_at=None
        ),
        call(built, now, campaign_id=second.id, publisher_id=None, target_id=None),
    )
    since, until = now - timedelta(days=2), now + timedelta(hours=1)
    assert await purge_once(service.runtime) == 1
    body = await report(service, built, since, until, group_by="campaign")
    assert body["group_by"] == "campaign"
    campaigns = {g["key"]: (g["pings"], g["claimed"], g["calls"]) for g in body["groups"]}
    assert campaigns == {built.campaign_id: (2, 2, 0), second.id: (1, 0, 1)}
    only = await report(service, built, since, until, campaign_id=second.id, group_by="campaign")
    assert [g["key"] for g in only["groups"]] == [second.id]


async def test_a_day_adds_rolled_up_and_stored_figures(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    now = service.clock.now  # 2026-11-23 15:00 UTC
    await store(
        service,
        reservation(built, now - timedelta(hours=14)),  # 01:00, purged
        reservation(built, now - timedelta(hours=13), publisher_id="pub-3"),  # 02:00, purged
        # 20:00, kept and live: not rolled up yet.
        reservation(
            built,
            now + timedelta(hours=5),
            status="reserved",
            claimed_at=None,
            expires_at=now + timedelta(hours=20),
        ),
        reservation(built, now - timedelta(days=1)),  # the day before, purged
    )
    service.clock.advance(13.5 * HOUR)  # 2026-11-24 04:30: purges before 2026-11-23 04:30
    assert await purge_once(service.runtime) == 3
    since, until = now - timedelta(days=2), service.clock.now
    days = await report(service, built, since, until, group_by="day")
    assert {g["key"]: g["pings"] for g in days["groups"]} == {"2026-11-22": 1, "2026-11-23": 3}
    publishers = await report(service, built, since, until, group_by="publisher")
    assert {g["key"]: g["claimed"] for g in publishers["groups"]} == {"pub-2": 2, "pub-3": 1}
    async with service.runtime.sessions() as session:
        assert await watermark(session) == now + timedelta(hours=5)


async def test_settled_hours_are_read_from_the_rollups(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    now = service.clock.now
    await store(
        service,
        reservation(built, now - timedelta(hours=3)),
        # Still live for hours: its hour is not settled, so the watermark stops before it.
        reservation(
            built,
            now - timedelta(hours=2),
            status="reserved",
            claimed_at=None,
            expires_at=now + timedelta(hours=1),
        ),
        reservation(built, now - timedelta(hours=1)),
    )
    since, until = now - timedelta(hours=4), now + timedelta(hours=1)
    before = await report(service, built, since, until)
    assert await purge_once(service.runtime) == 0
    async with service.runtime.sessions() as session:
        assert await watermark(session) == now - timedelta(hours=2)
    assert await report(service, built, since, until) == before

    await claim_stored(service)
    service.clock.advance(HOUR + SETTLE.total_seconds())
    claimed = await report(service, built, since, until)
    assert (claimed["claimed"], claimed["expired"]) == (3, 0)
    assert await purge_once(service.runtime) == 0
    async with service.runtime.sessions() as session:
        assert await watermark(session) == now + timedelta(hours=1)
    assert await report(service, built, since, until) == claimed


async def claim_stored(svc: Service) -> None:
    async with svc.runtime.sessions.begin() as session:
        row = await session.scalar(select(t.Reservation).where(t.Reservation.status == "reserved"))
        assert row is not None
        row.status, row.claimed_at = "claimed", row.created_at + timedelta(minutes=5)
