"""Reservations and their decision logs: the write operations the group writer commits, and
the reads of the publisher and owner look-ups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage.tables import CallerSeen, Reservation
from callbid.adapters.storage.writer import WriteOp

LIVE = ("reserved", "confirmed")

INSERT_RESERVATION = insert(Reservation)
UPDATE_STATUS = (
    update(Reservation)
    .where(Reservation.uuid == bindparam("b_uuid"))
    .values(status=bindparam("b_status"))
)
CONFIRM = (
    update(Reservation)
    .where(Reservation.uuid == bindparam("b_uuid"))
    .values(
        status="confirmed",
        confirmed_at=bindparam("b_at"),
        holds=True,
        subject_keys=bindparam("b_subjects"),
    )
)
WIPE = (
    update(Reservation)
    .where(Reservation.uuid == bindparam("b_uuid"))
    .values(status="wiped", wiped_at=bindparam("b_at"))
)
REFUSE = (
    update(Reservation)
    .where(Reservation.uuid == bindparam("b_uuid"))
    .values(status="no-target", owner_info=bindparam("b_info"))
)
EXPIRE = (
    update(Reservation)
    .where(Reservation.status.in_(LIVE), Reservation.expires_at <= bindparam("b_now"))
    .values(status="expired")
)


def _seen_upsert(dialect: str) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(CallerSeen)
    return stmt.on_conflict_do_update(
        index_elements=[CallerSeen.campaign_id, CallerSeen.caller_number],
        set_={"seen_at": stmt.excluded.seen_at, "keep_until": stmt.excluded.keep_until},
    )


class ReservationWrites:
    """Builds write operations for one SQL dialect; ranks order them inside a batch."""

    def __init__(self, dialect: str) -> None:
        self._seen = _seen_upsert(dialect)

    @staticmethod
    def created(row: dict[str, Any]) -> WriteOp:
        return WriteOp(0, INSERT_RESERVATION, row)

    def seen(
        self, company_id: int, campaign_id: int, caller: str, at: datetime, until: datetime
    ) -> WriteOp:
        params = {
            "campaign_id": campaign_id,
            "caller_number": caller,
            "company_id": company_id,
            "seen_at": at,
            "keep_until": until,
        }
        return WriteOp(2, self._seen, params)

    @staticmethod
    def confirmed(uuid: str, at: datetime, subject_keys: Sequence[str]) -> WriteOp:
        return WriteOp(3, CONFIRM, {"b_uuid": uuid, "b_at": at, "b_subjects": list(subject_keys)})

    @staticmethod
    def wiped(uuid: str, at: datetime) -> WriteOp:
        return WriteOp(3, WIPE, {"b_uuid": uuid, "b_at": at})

    @staticmethod
    def refused(uuid: str, info: str) -> WriteOp:
        return WriteOp(3, REFUSE, {"b_uuid": uuid, "b_info": info})


async def get_reservation(session: AsyncSession, uuid: str) -> Reservation | None:
    return await session.get(Reservation, uuid)


async def live_reservations(session: AsyncSession, now: datetime) -> Sequence[Reservation]:
    rows = await session.scalars(
        select(Reservation).where(Reservation.status.in_(LIVE), Reservation.expires_at > now)
    )
    return rows.all()


async def recent_callers(session: AsyncSession, now: datetime) -> Sequence[CallerSeen]:
    rows = await session.scalars(select(CallerSeen).where(CallerSeen.keep_until > now))
    return rows.all()


async def purge(session: AsyncSession, *, older_than: datetime, now: datetime) -> int:
    """Delete RTB records created before `older_than` and caller recency past its window."""
    result = await session.execute(delete(Reservation).where(Reservation.created_at < older_than))
    await session.execute(delete(CallerSeen).where(CallerSeen.keep_until <= now))
    return int(getattr(result, "rowcount", 0) or 0)
