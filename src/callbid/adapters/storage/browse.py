"""The console's logs: a company's reservations and calls, newest first, paged by keyset on
`(time, uuid)` (never OFFSET), so a page costs the same on the millionth row as on the first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage.reservations import LIVE
from callbid.adapters.storage.tables import Call, Reservation

RESERVATION_STATUSES = (
    "reserved",
    "confirmed",
    "claimed",
    "expired",
    "wiped",
    "rejected",
    "no-target",
)
CALL_STATUSES = ("routing", "connected", "ended", "converted")


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What an owner narrowed a log to; None fields do not filter."""

    campaign_id: int | None = None
    publisher_id: str | None = None
    status: str | None = None
    caller_number: str | None = None
    since: datetime | None = None
    until: datetime | None = None


Cursor = tuple[datetime, str]


async def reservations_page(
    session: AsyncSession,
    company_id: int,
    wanted: LogFilter,
    now: datetime,
    *,
    before: Cursor | None = None,
    after: Cursor | None = None,
    limit: int = 50,
) -> Sequence[Reservation]:
    """Up to `limit` reservations, newest first: older than `before`, or newer than `after`
    (the rows a live page has not shown yet)."""
    r = Reservation
    where: list[Any] = [r.company_id == company_id, *_common(r, r.created_at, wanted)]
    if wanted.status is not None:
        where.append(_reservation_status(wanted.status, now))
    return await _page(session, r, r.created_at, where, before, after, limit)


async def calls_page(
    session: AsyncSession,
    company_id: int,
    wanted: LogFilter,
    *,
    before: Cursor | None = None,
    after: Cursor | None = None,
    limit: int = 50,
) -> Sequence[Call]:
    """Up to `limit` calls, newest first, as `reservations_page` pages them."""
    where: list[Any] = [Call.company_id == company_id, *_common(Call, Call.started_at, wanted)]
    if wanted.status == "converted":
        where.append(Call.converted.is_(True))
    elif wanted.status is not None:
        where.append(Call.status == wanted.status)
    return await _page(session, Call, Call.started_at, where, before, after, limit)


def _common(table: type[Reservation] | type[Call], at: Any, wanted: LogFilter) -> list[Any]:
    where: list[Any] = []
    if wanted.campaign_id is not None:
        where.append(table.campaign_id == wanted.campaign_id)
    if wanted.publisher_id is not None:
        where.append(table.publisher_id == wanted.publisher_id)
    if wanted.caller_number is not None:
        where.append(table.caller_number == wanted.caller_number)
    if wanted.since is not None:
        where.append(at >= wanted.since)
    if wanted.until is not None:
        where.append(at < wanted.until)
    return where


def _reservation_status(status: str, now: datetime) -> Any:
    """Stored status as the look-up reads it: a live reservation past its TTL is expired."""
    r = Reservation
    if status == "expired":
        return or_(r.status == "expired", and_(r.status.in_(LIVE), r.expires_at <= now))
    if status in LIVE:
        return and_(r.status == status, r.expires_at > now)
    return r.status == status


async def _page(
    session: AsyncSession,
    table: Any,
    at: Any,
    where: list[Any],
    before: Cursor | None,
    after: Cursor | None,
    limit: int,
) -> Sequence[Any]:
    key = tuple_(at, table.uuid)

    def bound(cursor: Cursor) -> Any:
        return tuple_(literal(cursor[0], at.type), literal(cursor[1], table.uuid.type))

    if before is not None:
        where.append(key < bound(before))
    if after is not None:
        where.append(key > bound(after))
        # Oldest of the unseen first, so that a burst larger than `limit` is not skipped.
        rows = await session.scalars(
            select(table).where(*where).order_by(at, table.uuid).limit(limit)
        )
        return list(reversed(rows.all()))
    rows = await session.scalars(
        select(table).where(*where).order_by(at.desc(), table.uuid.desc()).limit(limit)
    )
    return rows.all()
