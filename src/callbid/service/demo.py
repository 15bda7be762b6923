"""The demo company seeded into an empty database, so a fresh `callbid serve` answers pings."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.storage import tables as t
from callbid.api.auth import hash_token, new_token
from callbid.service.users import Role, add_user, new_password
from callbid.settings import Settings

DEMO_META_KEY = "demo"
#: Where `callbid serve` last listened (or `CALLBID_PUBLIC_URL`), for `callbid demo`.
SERVED_URL_META_KEY = "served_url"
DEMO_PUBLISHER = "demo-pub"
DEMO_EMAIL = "owner@demo.example"
WEEKDAYS = [0, 1, 2, 3, 4]
EVERY_DAY = [0, 1, 2, 3, 4, 5, 6]


async def seed_demo_if_empty(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> bool:
    """Create the demo company when there is no company at all; True when it did."""
    async with sessions.begin() as session:
        if await session.scalar(select(func.count()).select_from(t.Company)):
            return False
        await _seed(session)
        return True


async def demo_credentials(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any] | None:
    """The demo's key, tokens and console sign-in; a demo seeded before the console had users
    gets its console user now."""
    async with sessions.begin() as session:
        row = await session.get(t.Meta, DEMO_META_KEY)
        if row is None:
            return None
        credentials: dict[str, Any] = json.loads(row.value)
        if "email" not in credentials:
            campaign = await session.get(t.Campaign, credentials["campaign_id"])
            if campaign is not None:
                credentials.update(await _demo_user(session, campaign.company_id))
                row.value = json.dumps(credentials)
    return credentials


async def _demo_user(session: AsyncSession, company_id: int) -> dict[str, str]:
    password = new_password()
    await add_user(session, company_id, DEMO_EMAIL, password, Role.ADMIN)
    return {"email": DEMO_EMAIL, "password": password}


async def _seed(session: AsyncSession) -> None:
    token = new_token()
    carrier_token = new_token()
    company = t.Company(
        name="Demo Company", token_hash=hash_token(token), carrier_auth_token=carrier_token
    )
    session.add(company)
    await session.flush()
    cid = company.id
    campaign = t.Campaign(company_id=cid, name="Demo: auto insurance", routing_strategy="priority")
    session.add(campaign)
    await session.flush()
    pool = t.NumberPool(company_id=cid, campaign_id=campaign.id, name="Pings without caller number")
    session.add(pool)
    await session.flush()
    for number in ("+18885550100", "+18885550101"):
        session.add(t.TrackingNumber(company_id=cid, campaign_id=campaign.id, number=number))
    for number in ("+18885550190", "+18885550191", "+18885550192"):
        session.add(
            t.TrackingNumber(
                company_id=cid, campaign_id=campaign.id, number=number, pool_id=pool.id
            )
        )
    targets = [
        t.Target(
            company_id=cid,
            name="Acme Insurance (New York office)",
            destination="+12125550150",
            priority=1,
            weight=3,
            timezone="America/New_York",
            hours=[{"days": WEEKDAYS, "open": "09:00", "close": "17:00"}],
            concurrency_cap=2,
            daily_cap=50,
            filters=[{"tag": "caller_state", "op": "in", "values": ["NY", "NJ", "CT"]}],
        ),
        t.Target(
            company_id=cid,
            name="Beacon Health (night line)",
            destination="sip:intake@beacon.example",
            priority=1,
            weight=1,
            timezone="America/Chicago",
            hours=[{"days": EVERY_DAY, "open": "18:00", "close": "06:00"}],
            hourly_cap=20,
            filters=[{"tag": "caller_zip", "op": "exists", "values": []}],
        ),
        t.Target(
            company_id=cid,
            name="Round-the-clock call center",
            destination="+13125550170",
            priority=2,
            weight=1,
            timezone="UTC",
            monthly_cap=1_000_000,
        ),
    ]
    session.add_all(targets)
    await session.flush()
    for target in targets:
        session.add(t.CampaignTarget(campaign_id=campaign.id, target_id=target.id))
    group = t.TargetGroup(company_id=cid, name="Day and night partners", daily_cap=100)
    session.add(group)
    await session.flush()
    for target in targets[:2]:
        session.add(t.TargetGroupMember(group_id=group.id, target_id=target.id))
    session.add(t.Publisher(company_id=cid, publisher_id=DEMO_PUBLISHER, name="Demo publisher"))
    session.add(
        t.ConversionCriterion(
            company_id=cid,
            campaign_id=campaign.id,
            name="demo-pub, 90 seconds",
            position=0,
            publisher_id=DEMO_PUBLISHER,
            payout=12.5,
            revenue=25.0,
            buffer_seconds=90,
        )
    )
    key = str(uuid.uuid4())
    session.add(t.RtbKey(key=key, company_id=cid, campaign_id=campaign.id, name="Demo RTB key"))
    credentials = {
        "key": key,
        "publisher_id": DEMO_PUBLISHER,
        "admin_token": token,
        "campaign_id": campaign.id,
        "carrier_auth_token": carrier_token,
        **await _demo_user(session, cid),
    }
    session.add(t.Meta(key=DEMO_META_KEY, value=json.dumps(credentials)))


async def seed_and_describe(
    settings: Settings, *, seed: bool | None = None, serving_at: str | None = None
) -> dict[str, Any] | None:
    """Seed the demo into an empty database (when `seed`, default `settings.seed_demo`) and
    return its credentials, None when the database has no demo company. `serving_at`: the
    base URL a starting server listens on, recorded for later `describe_served_url` calls."""
    from callbid.adapters.storage.db import create_engine, session_factory

    engine = create_engine(settings)
    try:
        sessions = session_factory(engine)
        if serving_at is not None:
            async with sessions.begin() as session:
                await session.merge(t.Meta(key=SERVED_URL_META_KEY, value=serving_at))
        if settings.seed_demo if seed is None else seed:
            await seed_demo_if_empty(sessions, settings)
        return await demo_credentials(sessions)
    finally:
        await engine.dispose()


async def describe_served_url(settings: Settings) -> str | None:
    """The base URL `callbid serve` recorded when it last started on this database."""
    from callbid.adapters.storage.db import create_engine, session_factory

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            row = await session.get(t.Meta, SERVED_URL_META_KEY)
        return row.value if row is not None else None
    finally:
        await engine.dispose()
