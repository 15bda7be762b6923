"""Report rollups: reservations' counts added up per UTC hour before the rows are purged.

Every reservation is counted exactly once, either from its row or from `report_rollups`:

- The *watermark* (`meta` key `report_rollups_until`, an hour start) splits them: rows created
  before it have been added to the rollups; reports read rows only from it on. It advances
  only over *settled* hours: those that ended `SETTLE` ago and whose reservations all have
  `expires_at` null or `SETTLE` in the past. A reservation changes (confirmed, claimed,
  wiped) only while it is live, which ends at `expires_at`; `SETTLE` leaves ample time for a
  claim decided just before then, and for the group writer's insert, to be committed. A
  settled live row counts as expired, as a report at that time would count it.
- The purge first adds every row it deletes that the watermark has not passed (a live row
  past its TTL counts as expired), in the same transaction as the delete.

Both run in the purge job's transaction, which first locks the watermark's row (PostgreSQL),
so that two workers never add the same rows. A row inserted with a creation time already
behind the watermark (never done by the service) would not be counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage.reservations import LIVE, purge
from callbid.adapters.storage.tables import Meta, ReportRollup, Reservation

WATERMARK_KEY = "report_rollups_until"
SETTLE = timedelta(minutes=10)
COUNTS = ("pings", "reserved", "confirmed", "claimed", "expired", "wiped")
KEY = ("company_id", "hour", "campaign_id", "publisher_id", "target_id")
NO_TARGET = 0


def reservation_counts(now: datetime) -> tuple[ColumnElement[int], ...]:
    """Aggregates of reservation rows in `COUNTS` order, read at `now` (a live row whose TTL
    has passed counts as expired)."""
    r = Reservation
    expired = or_(r.status == "expired", and_(r.status.in_(LIVE), r.expires_at <= now))
    return (
        func.count(),
        func.count(r.expires_at),
        func.count(r.confirmed_at),
        func.count(r.claimed_at),
        func.coalesce(func.sum(case((expired, 1), else_=0)), 0),
        func.count(r.wiped_at),
    )


def hour_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """The start of a UTC timestamp column's hour, in SQL, comparable with the column."""
    if dialect == "postgresql":
        return func.timezone("UTC", func.date_trunc("hour", func.timezone("UTC", column)))
    # SQLite keeps UTC timestamps as naive `YYYY-MM-DD HH:MM:SS.ffffff` text.
    return func.strftime("%Y-%m-%d %H:00:00.000000", column)


def floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


async def watermark(session: AsyncSession, *, lock: bool = False) -> datetime | None:
    """Rows created before this have been rolled up; None while none has been."""
    query = select(Meta.value).where(Meta.key == WATERMARK_KEY)
    value = await session.scalar(query.with_for_update() if lock else query)
    return datetime.fromisoformat(value) if value else None


async def _set_watermark(session: AsyncSession, until: datetime) -> None:
    stmt = _dialect_module(session).insert(Meta).values(key=WATERMARK_KEY, value=until.isoformat())
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[Meta.key], set_={"value": stmt.excluded.value})
    )


async def _ensure_watermark_row(session: AsyncSession) -> None:
    stmt = _dialect_module(session).insert(Meta).values(key=WATERMARK_KEY, value="")
    await session.execute(stmt.on_conflict_do_nothing(index_elements=[Meta.key]))


def _dialect_module(session: AsyncSession) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


async def roll_up(
    session: AsyncSession, since: datetime | None, until: datetime, now: datetime
) -> None:
    """Add the counts of reservations created in `[since, until)` (from the first when
    `since` is None) to the rollups, read at `now`."""
    r = Reservation
    dialect = session.get_bind().dialect.name
    hour = hour_of(r.created_at, dialect)
    target = func.coalesce(r.target_id, NO_TARGET)
    where = [r.created_at < until]
    if since is not None:
        where.append(r.created_at >= since)
    source = (
        select(r.company_id, hour, r.campaign_id, r.publisher_id, target, *reservation_counts(now))
        .where(*where)
        .group_by(r.company_id, hour, r.campaign_id, r.publisher_id, target)
    )
    stmt = _dialect_module(session).insert(ReportRollup).from_select(KEY + COUNTS, source)
    added = {name: getattr(ReportRollup, name) + getattr(stmt.excluded, name) for name in COUNTS}
    await session.execute(stmt.on_conflict_do_update(index_elements=list(KEY), set_=added))


async def settled_until(session: AsyncSession, since: datetime | None, now: datetime) -> datetime:
    """The latest hour start up to which every reservation from `since` on is settled."""
    until = floor_hour(now - SETTLE)
    r = Reservation
    where = [r.created_at < until, r.expires_at > now - SETTLE]
    if since is not None:
        where.append(r.created_at >= since)
    unsettled = await session.scalar(select(func.min(r.created_at)).where(*where))
    if unsettled is not None:
        until = floor_hour(unsettled)
    return until if since is None else max(until, since)


async def roll_up_settled(session: AsyncSession, now: datetime) -> datetime:
    """Advance the watermark over the settled hours, adding their counts; the watermark."""
    await _ensure_watermark_row(session)
    since = await watermark(session, lock=True)
    until = await settled_until(session, since, now)
    if since is None or until > since:
        await roll_up(session, since, until, now)
        await _set_watermark(session, until)
    return until


async def purge_with_rollups(session: AsyncSession, *, older_than: datetime, now: datetime) -> int:
    """Roll up the settled hours, then roll up and delete RTB records created before
    `older_than` (see `reservations.purge`); reservations deleted."""
    rolled = await roll_up_settled(session, now)
    if rolled < older_than:
        await roll_up(session, rolled, older_than, now)
    return await purge(session, older_than=older_than, now=now)
