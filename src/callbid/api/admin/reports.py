"""`/reports`: what the company's reservations and calls came to over a period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from callbid.api.admin.common import ERRORS, CampaignFilter, CompanyId, Session
from callbid.api.auth import runtime_of
from callbid.api.render import iso_ms
from callbid.service.reports import GroupBy, Totals, summarize

router = APIRouter(prefix="/reports", tags=["reports"], responses=ERRORS)

Instant = Annotated[
    datetime,
    Query(
        description="ISO-8601 instant, e.g. `2026-11-23T00:00:00Z`; without a zone it is read "
        "as UTC",
        examples=["2026-11-23T00:00:00Z"],
    ),
]


class Figures(BaseModel):
    """What reservations and calls came to. Reservations count by creation time (purged ones
    by creation hour), calls by start time."""

    pings: int = Field(description="reservation requests (rows), whatever their answer")
    reserved: int = Field(description="requests answered with a reservation")
    confirmed: int = Field(description="reservations the publisher confirmed")
    claimed: int = Field(description="reservations whose call arrived in time")
    expired: int = Field(
        description="reservations whose TTL passed without their call (also those the "
        "sweeper has not marked yet)"
    )
    wiped: int = Field(description="reservations the publisher released")
    calls: int = Field(description="calls that reached the campaigns' tracking numbers")
    conversions: int = Field(description="calls that converted")
    payout: float = Field(description="owed to publishers for converted calls, in cents")
    revenue: float = Field(description="earned from buyers for converted calls, in cents")
    profit: float = Field(description="revenue less payout")


class GroupFigures(Figures):
    """The figures of one day (`YYYY-MM-DD`, UTC), campaign id, publisher id or target id."""

    key: str | int | None = Field(
        description="the day, campaign id, publisher id or target id; null for calls and "
        "requests with none (no publisher on an unmatched call, no target on a refused request)"
    )


class Summary(Figures):
    """A report over `[since, until)`."""

    since: str = Field(description="start of the period (included), ISO-8601 UTC")
    until: str = Field(description="end of the period (excluded), ISO-8601 UTC")
    campaign_id: int | None = Field(description="only this campaign's, when asked")
    group_by: GroupBy | None = Field(description="how `groups` breaks the totals down")
    groups: list[GroupFigures] | None = Field(description="the breakdown, when asked")


@router.get(
    "/summary",
    response_model=Summary,
    summary="Totals over a period",
    description="Pings, reservations by outcome, calls, conversions, payout, revenue and profit "
    "of the token's company over `[since, until)`: reservations created and calls started in "
    "the period. `group_by` adds a breakdown by UTC day, campaign, publisher or target. "
    "Reservations already purged count by the UTC hour they were created in.",
)
async def read_summary(
    request: Request,
    session: Session,
    company_id: CompanyId,
    since: Instant,
    until: Instant,
    campaign_id: CampaignFilter = None,
    group_by: Annotated[GroupBy | None, Query(description="break the totals down")] = None,
) -> Summary:
    since, until = _utc(since), _utc(until)
    if since >= until:
        raise RequestValidationError(
            [{"loc": ("query", "until"), "msg": "must be after since", "type": "value_error"}]
        )
    report = await summarize(
        session,
        company_id,
        since,
        until,
        runtime_of(request).clock(),
        campaign_id=campaign_id,
        group_by=group_by,
    )
    groups = None
    if report.groups is not None:
        groups = [_group(key, totals) for key, totals in report.groups.items()]
    return Summary(
        since=iso_ms(since) or "",
        until=iso_ms(until) or "",
        campaign_id=campaign_id,
        group_by=group_by,
        groups=groups,
        **report.totals.as_dict(),
    )


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _group(key: str | int | None, totals: Totals) -> GroupFigures:
    return GroupFigures(key=key, **totals.as_dict())
