"""Reports: what a company's reservations and calls came to over a period, in total and, when
asked, by day, publisher or target.

A reservation counts in the period it was created in, a call in the period it started in (both
UTC, `[since, until)`). Counts are read from the stored rows at `now`: a live reservation whose
TTL has passed counts as expired although the sweeper has not marked it yet, so a report does
not depend on when the sweeper last ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage.reservations import LIVE
from callbid.adapters.storage.tables import Call, Reservation

#: Money is summed over floats and reported in cents.
CENTS = 2


class GroupBy(StrEnum):
    """How a report breaks its totals down."""

    DAY = "day"
    PUBLISHER = "publisher"
    TARGET = "target"


@dataclass(slots=True)
class Totals:
    """The figures of a report (or of one of its groups); money unrounded until `as_dict`."""

    pings: int = 0
    reserved: int = 0
    confirmed: int = 0
    claimed: int = 0
    expired: int = 0
    wiped: int = 0
    calls: int = 0
    conversions: int = 0
    payout: float = 0.0
    revenue: float = 0.0

    def add(self, other: Totals) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        """The figures with money in cents and `profit` (revenue less payout)."""
        payout, revenue = round(self.payout, CENTS), round(self.revenue, CENTS)
        return {
            "pings": self.pings,
            "reserved": self.reserved,
            "confirmed": self.confirmed,
            "claimed": self.claimed,
            "expired": self.expired,
            "wiped": self.wiped,
            "calls": self.calls,
            "conversions": self.conversions,
            "payout": payout,
            "revenue": revenue,
            "profit": round(revenue - payout, CENTS),
        }


GroupKey = str | int | None


@dataclass(slots=True)
class Report:
    """Totals over `[since, until)`; `groups` (key to totals, keys sorted, None last) when the
    report was broken down."""

    since: datetime
    until: datetime
    totals: Totals = field(default_factory=Totals)
    groups: dict[GroupKey, Totals] | None = None


async def summarize(
    session: AsyncSession,
    company_id: int,
    since: datetime,
    until: datetime,
    now: datetime,
    *,
    campaign_id: int | None = None,
    group_by: GroupBy | None = None,
) -> Report:
    """The company's report over `[since, until)` (aware datetimes), only `campaign_id`'s when
    given, broken down by `group_by` when given. Two aggregate queries; never raises for an
    empty period (all zeros)."""
    dialect = session.get_bind().dialect.name
    period = (since, until)
    rows = await _reservation_rows(
        session, company_id, period, now, campaign_id, _group_column(group_by, Reservation, dialect)
    )
    rows += await _call_rows(
        session, company_id, period, campaign_id, _group_column(group_by, Call, dialect)
    )
    found: dict[GroupKey, Totals] = {}
    for key, totals in rows:
        found.setdefault(key, Totals()).add(totals)
    report = Report(since, until)
    for totals in found.values():
        report.totals.add(totals)
    if group_by is not None:
        report.groups = {key: found[key] for key in sorted(found, key=_sort_key)}
    return report


def _sort_key(key: GroupKey) -> tuple[bool, str, int]:
    return (key is None, key if isinstance(key, str) else "", key if isinstance(key, int) else 0)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _sum_if(condition: ColumnElement[bool], column: Any) -> ColumnElement[float]:
    return func.coalesce(func.sum(case((condition, func.coalesce(column, 0.0)), else_=0.0)), 0.0)


def _day_of(column: Any, dialect: str) -> ColumnElement[str]:
    """`YYYY-MM-DD` of a UTC timestamp column, in SQL."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    # SQLite keeps UTC timestamps as naive `YYYY-MM-DD HH:MM:SS.ffffff` text.
    return func.substr(column, 1, 10)


def _group_column(group_by: GroupBy | None, table: type[Reservation | Call], dialect: str) -> Any:
    if group_by is GroupBy.DAY:
        return _day_of(Reservation.created_at if table is Reservation else Call.started_at, dialect)
    if group_by is GroupBy.PUBLISHER:
        return table.publisher_id
    if group_by is GroupBy.TARGET:
        return table.target_id
    return None


async def _aggregate(
    session: AsyncSession, key: Any, aggregates: Sequence[Any], where: Sequence[Any]
) -> list[tuple[GroupKey, Sequence[Any]]]:
    """One row of `aggregates` per value of `key` (one row in all when `key` is None)."""
    if key is None:
        row = (await session.execute(select(*aggregates).where(*where))).one()
        return [(None, tuple(row))]
    query = select(key, *aggregates).where(*where).group_by(key)
    return [(row[0], tuple(row[1:])) for row in await session.execute(query)]


async def _reservation_rows(
    session: AsyncSession,
    company_id: int,
    period: tuple[datetime, datetime],
    now: datetime,
    campaign_id: int | None,
    key: Any,
) -> list[tuple[GroupKey, Totals]]:
    r = Reservation
    expired = or_(r.status == "expired", and_(r.status.in_(LIVE), r.expires_at <= now))
    aggregates = (
        func.count(),
        func.count(r.expires_at),
        func.count(r.confirmed_at),
        func.count(r.claimed_at),
        _count_if(expired),
        func.count(r.wiped_at),
    )
    where = [r.company_id == company_id, r.created_at >= period[0], r.created_at < period[1]]
    if campaign_id is not None:
        where.append(r.campaign_id == campaign_id)
    return [
        (grouped, Totals(*(int(value) for value in figures)))
        for grouped, figures in await _aggregate(session, key, aggregates, where)
    ]


async def _call_rows(
    session: AsyncSession,
    company_id: int,
    period: tuple[datetime, datetime],
    campaign_id: int | None,
    key: Any,
) -> list[tuple[GroupKey, Totals]]:
    converted = Call.converted.is_(True)
    aggregates = (
        func.count(),
        _count_if(converted),
        _sum_if(converted, Call.payout),
        _sum_if(converted, Call.revenue),
    )
    where = [
        Call.company_id == company_id,
        Call.started_at >= period[0],
        Call.started_at < period[1],
    ]
    if campaign_id is not None:
        where.append(Call.campaign_id == campaign_id)
    out = []
    for grouped, (calls, conversions, payout, revenue) in await _aggregate(
        session, key, aggregates, where
    ):
        totals = Totals(calls=int(calls), conversions=int(conversions))
        totals.payout, totals.revenue = float(payout), float(revenue)
        out.append((grouped, totals))
    return out
