"""The reports page: a period's totals, charts over time and per publisher, and each breakdown
as a table and as CSV. Figures come from `service.reports.summarize`, as the API's do."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import Depends, Request
from markupsafe import Markup
from sqlalchemy import select
from starlette.responses import Response

from callbid.adapters.storage import tables as t
from callbid.api.auth import runtime_of
from callbid.console.auth import console_principal
from callbid.console.charts import bar_chart, line_chart
from callbid.console.templating import render
from callbid.domain.errors import InvalidInput
from callbid.service.reports import GroupBy, Report, Totals, summarize
from callbid.service.users import Principal

DEFAULT_DAYS = 7
MAX_DAYS = 366
#: The figures of a report, in the API's order.
COLUMNS = tuple(Totals().as_dict())
BREAKDOWNS = tuple(GroupBy)


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date
    campaign_id: int | None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    def days(self) -> list[str]:
        count = (self.last - self.first).days + 1
        return [(self.first + timedelta(days=i)).isoformat() for i in range(count)]


def _day(name: str, value: str | None, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: expected a date like 2026-12-07") from None


def parse_period(params: Any, today: date) -> Period:
    """The report's days (`from`, `to`, both included, UTC) and campaign; InvalidInput naming
    the field when they are wrong."""
    last = _day("to", params.get("to"), today)
    first = _day("from", params.get("from"), last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise InvalidInput("from: must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"from: a report covers at most {MAX_DAYS} days")
    campaign = params.get("campaign") or None
    if campaign is not None and not campaign.isdigit():
        raise InvalidInput("campaign: expected a campaign id")
    return Period(first, last, int(campaign) if campaign else None)


async def _report(
    request: Request, principal: Principal, period: Period, by: GroupBy | None
) -> Report:
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        return await summarize(
            session,
            principal.company_id,
            period.since,
            period.until,
            runtime.clock(),
            campaign_id=period.campaign_id,
            group_by=by,
        )


async def _names(request: Request, company_id: int) -> dict[str, dict[Any, str]]:
    async with runtime_of(request).sessions() as session:
        campaigns = (
            await session.execute(
                select(t.Campaign.id, t.Campaign.name).where(t.Campaign.company_id == company_id)
            )
        ).all()
        targets = (
            await session.execute(
                select(t.Target.id, t.Target.name).where(t.Target.company_id == company_id)
            )
        ).all()
    return {"campaign": {k: v for k, v in campaigns}, "target": {k: v for k, v in targets}}


def _label(by: GroupBy, key: Any, names: dict[str, dict[Any, str]]) -> str:
    if key is None:
        return "(none)"
    return names.get(str(by), {}).get(key) or str(key)


def _rows(report: Report, by: GroupBy, names: dict[str, dict[Any, str]]) -> list[dict[str, Any]]:
    return [
        {"key": key, "label": _label(by, key, names), **totals.as_dict()}
        for key, totals in (report.groups or {}).items()
    ]


def _charts(period: Period, by_day: Report, by_publisher: Report) -> list[Markup]:
    days = period.days()
    figures = {key: totals.as_dict() for key, totals in (by_day.groups or {}).items()}
    empty = Totals().as_dict()

    def series(name: str) -> list[float]:
        return [float(figures.get(day, empty)[name]) for day in days]

    publishers = list((by_publisher.groups or {}).items())
    rates = [100.0 * p.conversions / p.calls if p.calls else 0.0 for _, p in publishers]
    return [
        line_chart(
            "Pings and outcomes per day",
            days,
            {
                "pings": series("pings"),
                "reserved": series("reserved"),
                "claimed": series("claimed"),
                "converted": series("conversions"),
            },
        ),
        line_chart(
            "Money per day",
            days,
            {
                "payout": series("payout"),
                "revenue": series("revenue"),
                "profit": series("profit"),
            },
            unit="$",
        ),
        bar_chart(
            "Conversion rate per publisher (% of calls)",
            [str(key) for key, _ in publishers],
            rates,
            unit="%",
        ),
    ]


async def reports_page(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    runtime = runtime_of(request)
    period = parse_period(request.query_params, runtime.clock().date())
    names = await _names(request, principal.company_id)
    # Each breakdown on its own connection, side by side; any of them carries the totals.
    found = await asyncio.gather(*(_report(request, principal, period, by) for by in BREAKDOWNS))
    reports = dict(zip(BREAKDOWNS, found, strict=True))
    total = reports[GroupBy.DAY]
    return render(
        request,
        "reports.html",
        principal,
        section="reports",
        period=period,
        campaigns=names["campaign"],
        totals=total.totals.as_dict(),
        columns=COLUMNS,
        tables={str(by): _rows(report, by, names) for by, report in reports.items()},
        charts=_charts(period, reports[GroupBy.DAY], reports[GroupBy.PUBLISHER]),
        query=request.url.query,
    )


async def reports_csv(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    """One breakdown (`by`: day, campaign, publisher, target or total) as CSV."""
    runtime = runtime_of(request)
    period = parse_period(request.query_params, runtime.clock().date())
    wanted = request.query_params.get("by") or "total"
    choices = [str(by) for by in BREAKDOWNS]
    if wanted != "total" and wanted not in choices:
        raise InvalidInput(f"by: one of total, {', '.join(choices)}")
    out = io.StringIO()
    writer = csv.writer(out)
    if wanted == "total":
        writer.writerow(["from", "to", *COLUMNS])
        figures = (await _report(request, principal, period, None)).totals.as_dict()
        writer.writerow([period.first, period.last, *(figures[c] for c in COLUMNS)])
    else:
        by = GroupBy(wanted)
        names = await _names(request, principal.company_id)
        writer.writerow([wanted, "name", *COLUMNS])
        for row in _rows(await _report(request, principal, period, by), by, names):
            writer.writerow([row["key"], row["label"], *(row[c] for c in COLUMNS)])
    filename = f"callbid-{wanted}-{period.first}-{period.last}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
