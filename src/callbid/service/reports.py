"""Reports: what a company's reservations and calls came to over a period, in total and, when
asked, by day, campaign, publisher or target.

A reservation counts in the period it was created in, a call in the period it started in (both
UTC, `[since, until)`). Counts are read from the stored rows at `now`: a live reservation whose
TTL has passed counts as expired although the sweeper has not marked it yet, so a report does
not depend on when the sweeper last ran. Reservations already rolled up (see
`adapters.storage.rollups`: settled hours, and every row the purge deleted) are read from the
hourly rollups instead and count in the period their creation hour starts in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage.rollups import COUNTS, NO_TARGET, reservation_counts, watermark
from callbid.adapters.storage.tables import Call, ReportRollup, Reservation

#: Money is summed over floats and reported in cents.
CENTS = 2


class GroupBy(StrEnum):
    """How a report breaks its totals down."""

    DAY = "day"
    CAMPAIGN = "campaign"
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
    given, broken down by `group_by` when given. Three aggregate queries (rollups, the rows
    not rolled up, calls); never raises for an empty period (all zeros)."""
    dialect = session.get_bind().dialect.name
    period = (since, until)
    rows = await _rollup_rows(
        session, company_id, period, campaign_id, _group_column(group_by, ReportRollup, dialect)
    )
    rolled = await watermark(session)
    raw = (max(since, rolled), until) if rolled is not None else period
    rows += await _reservation_rows(
        session, company_id, raw, now, campaign_id, _group_column(group_by, Reservation, dialect)
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


Table = type[Reservation | Call | ReportRollup]
TIME_COLUMNS: dict[Table, Any] = {
    Reservation: Reservation.created_at,
    Call: Call.started_at,
    ReportRollup: ReportRollup.hour,
}


def _group_column(group_by: GroupBy | None, table: Table, dialect: str) -> Any:
    if group_by is GroupBy.DAY:
        return _day_of(TIME_COLUMNS[table], dialect)
    if group_by is GroupBy.CAMPAIGN:
        return table.campaign_id
    if group_by is GroupBy.PUBLISHER:
        return table.publisher_id
    if group_by is GroupBy.TARGET:
        if table is ReportRollup:
            return func.nullif(ReportRollup.target_id, NO_TARGET)
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
    where = [r.company_id == company_id, r.created_at >= period[0], r.created_at < period[1]]
    if campaign_id is not None:
        where.append(r.campaign_id == campaign_id)
    return _reservation_totals(await _aggregate(session, key, reservation_counts(now), where))


async def _rollup_rows(
    session: AsyncSession,
    company_id: int,
    period: tuple[datetime, datetime],
    campaign_id: int | None,
    key: Any,
) -> list[tuple[GroupKey, Totals]]:
    r = ReportRollup
    aggregates = [func.coalesce(func.sum(getattr(r, name)), 0) for name in COUNTS]
    where = [r.company_id == company_id, r.hour >= period[0], r.hour < period[1]]
    if campaign_id is not None:
        where.append(r.campaign_id == campaign_id)
    return _reservation_totals(await _aggregate(session, key, aggregates, where))


def _reservation_totals(
    rows: Sequence[tuple[GroupKey, Sequence[Any]]],
) -> list[tuple[GroupKey, Totals]]:
    return [(grouped, Totals(*(int(value) for value in figures))) for grouped, figures in rows]


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
