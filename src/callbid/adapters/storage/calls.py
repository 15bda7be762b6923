"""Calls: the write operations the group writer commits for them, and their reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage.tables import Call, CapCount, Reservation
from callbid.adapters.storage.writer import WriteOp

#: Columns a call's updates rewrite (everything but its identity).
MUTABLE = tuple(
    c.key
    for c in inspect(Call).columns
    if c.key not in ("uuid", "company_id", "campaign_id", "call_sid", "dialect", "started_at")
)
INSERT_CALL = insert(Call)
UPDATE_CALL = (
    update(Call)
    .where(Call.uuid == bindparam("b_uuid"))
    .values({name: bindparam(f"v_{name}") for name in MUTABLE})
)
CLAIM_RESERVATION = (
    update(Reservation)
    .where(Reservation.uuid == bindparam("b_uuid"))
    .values(status="claimed", claimed_at=bindparam("b_at"))
)
#: How many of a caller's reservations on a number a missed call looks back at.
MISS_LOOKBACK = 5


def _count_upsert(dialect: str) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(CapCount)
    return stmt.on_conflict_do_update(
        index_elements=[CapCount.company_id, CapCount.counter],
        set_={"count": CapCount.count + 1},
    )


class CallWrites:
    """Builds a call's write operations for one SQL dialect."""

    def __init__(self, dialect: str) -> None:
        self._count = _count_upsert(dialect)

    @staticmethod
    def created(row: dict[str, Any]) -> WriteOp:
        return WriteOp(0, INSERT_CALL, row)

    @staticmethod
    def updated(row: dict[str, Any]) -> WriteOp:
        params = {f"v_{name}": row[name] for name in MUTABLE}
        params["b_uuid"] = row["uuid"]
        return WriteOp(4, UPDATE_CALL, params)

    @staticmethod
    def claimed(reservation_uuid: str, at: datetime) -> WriteOp:
        return WriteOp(3, CLAIM_RESERVATION, {"b_uuid": reservation_uuid, "b_at": at})

    def counted(self, company_id: int, counters: Sequence[str]) -> list[WriteOp]:
        return [
            WriteOp(2, self._count, {"company_id": company_id, "counter": c, "count": 1})
            for c in counters
        ]


def as_dict(row: Call) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in inspect(Call).columns}


async def call_by_sid(session: AsyncSession, company_id: int, call_sid: str) -> Call | None:
    found = await session.scalars(
        select(Call).where(Call.company_id == company_id, Call.call_sid == call_sid)
    )
    return found.first()


async def call_of_reservation(session: AsyncSession, reservation_uuid: str) -> Call | None:
    found = await session.scalars(
        select(Call).where(Call.reservation_uuid == reservation_uuid).order_by(Call.started_at)
    )
    return found.first()


async def recent_reservations_on(
    session: AsyncSession, campaign_id: int, inbound_number: str, caller: str | None, now: datetime
) -> list[Reservation]:
    """What a call to `inbound_number` from `caller` might have been meant for: the caller's
    latest reservations on that number (a pool number's, whoever the caller), newest first,
    then one live reservation of anyone else on it."""
    on_number = (
        Reservation.campaign_id == campaign_id,
        Reservation.inbound_number == inbound_number,
    )
    own = select(Reservation).where(*on_number)
    if caller is not None:
        own = own.where(
            (Reservation.caller_number == caller) | Reservation.pool_number.is_not(None)
        )
    else:
        own = own.where(Reservation.pool_number.is_not(None))
    rows = list(
        (
            await session.scalars(own.order_by(Reservation.created_at.desc()).limit(MISS_LOOKBACK))
        ).all()
    )
    live = await session.scalars(
        select(Reservation)
        .where(*on_number, Reservation.status.in_(("reserved", "confirmed")))
        .where(Reservation.expires_at > now)
        .limit(1)
    )
    return rows + list(live.all())


async def last_conversions(
    session: AsyncSession, campaign_id: int, caller: str
) -> dict[int, float]:
    """When `caller` last converted on the campaign, by criterion (epoch seconds)."""
    rows = await session.execute(
        select(Call.criterion_id, func.max(Call.converted_at))
        .where(
            Call.campaign_id == campaign_id,
            Call.caller_number == caller,
            Call.converted.is_(True),
            Call.criterion_id.is_not(None),
        )
        .group_by(Call.criterion_id)
    )
    return {
        int(cid): at.timestamp() for cid, at in rows.all() if cid is not None and at is not None
    }


async def live_calls(session: AsyncSession, now: datetime) -> Sequence[Call]:
    """Calls not ended whose hold has not run out, for restoring the hot state."""
    rows = await session.scalars(
        select(Call).where(Call.hold_until > now, Call.holds.is_(True), Call.status != "ended")
    )
    return rows.all()


async def overdue_calls(session: AsyncSession, now: datetime) -> Sequence[Call]:
    """Calls whose end was never reported and whose maximum duration has passed."""
    rows = await session.scalars(
        select(Call).where(Call.hold_until <= now, Call.status != "ended").limit(500)
    )
    return rows.all()


async def cap_counts(session: AsyncSession) -> Sequence[CapCount]:
    rows = await session.scalars(select(CapCount))
    return rows.all()
