"""The RTB log and the calls log: newest first, filtered, paged by keyset, and kept live by
the page asking for rows newer than the newest it shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
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
    return urlencode(kept)


@dataclass(frozen=True, slots=True)
class Log:
    """One of the console's logs: what it lists, its statuses and its templates."""

    section: str
    statuses: Sequence[str]
    page: str
    rows: str
    fetch: Callable[
        [AsyncSession, int, LogFilter, datetime, Cursor | None, Cursor | None, int],
        Awaitable[Sequence[Any]],
    ]
    item: Callable[[Any, datetime], dict[str, Any]]


async def _fetch_reservations(
    session: AsyncSession,
    company_id: int,
    wanted: LogFilter,
    now: datetime,
    before: Cursor | None,
    after: Cursor | None,
    limit: int,
) -> Sequence[Any]:
    return await reservations_page(
        session, company_id, wanted, now, before=before, after=after, limit=limit
    )


async def _fetch_calls(
    session: AsyncSession,
    company_id: int,
    wanted: LogFilter,
    _now: datetime,
    before: Cursor | None,
    after: Cursor | None,
    limit: int,
) -> Sequence[Any]:
    return await calls_page(session, company_id, wanted, before=before, after=after, limit=limit)


RTB = Log(
    "rtb",
    RESERVATION_STATUSES,
    "rtb.html",
    "rtb_rows.html",
    _fetch_reservations,
    lambda row, now: {
        "row": row,
        "status": effective_status(row, now),
        "cursor": cursor_of(row.created_at, row.uuid),
    },
)
CALLS = Log(
    "calls",
    CALL_STATUSES,
    "calls.html",
    "calls_rows.html",
    _fetch_calls,
    lambda row, _now: {"row": row, "cursor": cursor_of(row.started_at, row.uuid)},
)


async def _rows(
    request: Request, principal: Principal, log: Log, *, fragment: bool
) -> tuple[list[dict[str, Any]], LogFilter, bool]:
    """A page of `log` (one more row fetched tells whether there are older ones), or for the
    live page every row newer than `after`, up to a page."""
    runtime = runtime_of(request)
    wanted = parse_filter(request.query_params, log.statuses)
    before = parse_cursor(request.query_params.get("before"))
    after = parse_cursor(request.query_params.get("after")) if fragment else None
    now = runtime.clock()
    limit = PAGE_SIZE if after else PAGE_SIZE + 1
    async with runtime.sessions() as session:
        rows = await log.fetch(session, principal.company_id, wanted, now, before, after, limit)
    more = len(rows) > PAGE_SIZE and after is None
    return [log.item(row, now) for row in rows[:PAGE_SIZE]], wanted, more


async def _page(request: Request, principal: Principal, log: Log) -> Response:
    shown, wanted, more = await _rows(request, principal, log, fragment=False)
    return render(
        request,
        log.page,
        principal,
        section=log.section,
        rows=shown,
        wanted=wanted,
        statuses=log.statuses,
        campaigns=await _campaigns(request, principal.company_id),
        newest=shown[0]["cursor"] if shown else "",
        older=shown[-1]["cursor"] if more else None,
        live=not request.query_params.get("before"),
        filters=_query_without(request, "before", "after"),
    )


async def _fragment(request: Request, principal: Principal, log: Log) -> Response:
    shown, _, _ = await _rows(request, principal, log, fragment=True)
    return render(request, log.rows, principal, rows=shown)


async def rtb_log(request: Request, principal: Principal = Depends(console_principal)) -> Response:
    return await _page(request, principal, RTB)


async def rtb_rows(request: Request, principal: Principal = Depends(console_principal)) -> Response:
    """The rows newer than `after`, as table rows, for the live page."""
    return await _fragment(request, principal, RTB)


async def calls_log(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    return await _page(request, principal, CALLS)


async def call_rows(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    return await _fragment(request, principal, CALLS)
