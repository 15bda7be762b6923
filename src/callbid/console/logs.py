"""The RTB log and the calls log: newest first, filtered, paged by keyset, and kept live by
the page asking for rows newer than the newest it shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from callbid.adapters.phone import to_e164
from callbid.adapters.storage import tables as t
from callbid.adapters.storage.browse import (
    CALL_STATUSES,
    RESERVATION_STATUSES,
    Cursor,
    LogFilter,
    calls_page,
    reservations_page,
)
from callbid.api.auth import runtime_of
from callbid.console.auth import console_principal
from callbid.console.templating import render
from callbid.domain.errors import InvalidInput
from callbid.service.ping import effective_status
from callbid.service.users import Principal

PAGE_SIZE = 50
FILTERS = ("campaign", "publisher", "status", "caller", "since", "until")


def parse_cursor(value: str | None) -> Cursor | None:
    """`2026-12-07T10:00:00.123456+00:00~<uuid>` as the pages write it."""
    if not value:
        return None
    at, sep, uuid = value.partition("~")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if not sep or moment is None or not uuid or len(uuid) > 36:
        raise InvalidInput("cursor: not a position in this log; start again from the first page")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC), uuid)


def cursor_of(at: datetime, uuid: str) -> str:
    return f"{at.isoformat()}~{uuid}"


def _moment(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: expected a date and time like 2026-12-07T09:30") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_filter(params: Any, statuses: Sequence[str]) -> LogFilter:
    """The log filter of a query string; InvalidInput naming the field that is wrong."""
    campaign = params.get("campaign") or None
    if campaign is not None and not campaign.isdigit():
        raise InvalidInput("campaign: expected a campaign id")
    status = params.get("status") or None
    if status is not None and status not in statuses:
        raise InvalidInput(f"status: one of {', '.join(statuses)}")
    caller = (params.get("caller") or "").strip() or None
    return LogFilter(
        campaign_id=int(campaign) if campaign else None,
        publisher_id=(params.get("publisher") or "").strip() or None,
        status=status,
        caller_number=(to_e164(caller) or caller) if caller else None,
        since=_moment("since", params.get("since")),
        until=_moment("until", params.get("until")),
    )


async def _campaigns(request: Request, company_id: int) -> list[t.Campaign]:
    async with runtime_of(request).sessions() as session:
        found = await session.scalars(
            select(t.Campaign).where(t.Campaign.company_id == company_id).order_by(t.Campaign.id)
        )
        return list(found.all())


def _query_without(request: Request, *names: str) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in names and v]
    from urllib.parse import urlencode

    return urlencode(kept)


async def _reservation_rows(
    request: Request, principal: Principal, *, fragment: bool
) -> tuple[list[dict[str, Any]], LogFilter, bool]:
    runtime = runtime_of(request)
    wanted = parse_filter(request.query_params, RESERVATION_STATUSES)
    before = parse_cursor(request.query_params.get("before"))
    after = parse_cursor(request.query_params.get("after")) if fragment else None
    now = runtime.clock()
    async with runtime.sessions() as session:
        rows = await reservations_page(
            session,
            principal.company_id,
            wanted,
            now,
            before=before,
            after=after,
            limit=PAGE_SIZE if after else PAGE_SIZE + 1,
        )
    more = len(rows) > PAGE_SIZE and after is None
    shown = [
        {
            "row": row,
            "status": effective_status(row, now),
            "cursor": cursor_of(row.created_at, row.uuid),
        }
        for row in rows[:PAGE_SIZE]
    ]
    return shown, wanted, more


async def rtb_log(request: Request, principal: Principal = Depends(console_principal)) -> Response:
    shown, wanted, more = await _reservation_rows(request, principal, fragment=False)
    return render(
        request,
        "rtb.html",
        principal,
        section="rtb",
        rows=shown,
        wanted=wanted,
        statuses=RESERVATION_STATUSES,
        campaigns=await _campaigns(request, principal.company_id),
        newest=shown[0]["cursor"] if shown else "",
        older=shown[-1]["cursor"] if more else None,
        live=not request.query_params.get("before"),
        filters=_query_without(request, "before", "after"),
    )


async def rtb_rows(request: Request, principal: Principal = Depends(console_principal)) -> Response:
    """The rows newer than `after`, as table rows, for the live page."""
    shown, _, _ = await _reservation_rows(request, principal, fragment=True)
    return render(request, "rtb_rows.html", principal, rows=shown)


async def _call_rows(
    request: Request, principal: Principal, *, fragment: bool
) -> tuple[list[dict[str, Any]], LogFilter, bool]:
    runtime = runtime_of(request)
    wanted = parse_filter(request.query_params, CALL_STATUSES)
    before = parse_cursor(request.query_params.get("before"))
    after = parse_cursor(request.query_params.get("after")) if fragment else None
    async with runtime.sessions() as session:
        rows = await calls_page(
            session,
            principal.company_id,
            wanted,
            before=before,
            after=after,
            limit=PAGE_SIZE if after else PAGE_SIZE + 1,
        )
    more = len(rows) > PAGE_SIZE and after is None
    shown = [
        {"row": row, "cursor": cursor_of(row.started_at, row.uuid)} for row in rows[:PAGE_SIZE]
    ]
    return shown, wanted, more


async def calls_log(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    shown, wanted, more = await _call_rows(request, principal, fragment=False)
    return render(
        request,
        "calls.html",
        principal,
        section="calls",
        rows=shown,
        wanted=wanted,
        statuses=CALL_STATUSES,
        campaigns=await _campaigns(request, principal.company_id),
        newest=shown[0]["cursor"] if shown else "",
        older=shown[-1]["cursor"] if more else None,
        live=not request.query_params.get("before"),
        filters=_query_without(request, "before", "after"),
    )


async def call_rows(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    shown, _, _ = await _call_rows(request, principal, fragment=True)
    return render(request, "calls_rows.html", principal, rows=shown)
