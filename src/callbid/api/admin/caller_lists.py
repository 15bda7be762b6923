"""`/caller-lists`: callers to refuse (block) or to accept exclusively (allow)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.phone import to_e164
from callbid.adapters.storage import tables as t
from callbid.api.admin.common import (
    DEFAULT_LIMIT,
    ERRORS,
    CompanyId,
    Limit,
    Offset,
    Session,
    apply,
    owned,
    page,
    save,
)
from callbid.api.admin.schemas import (
    CallerListCreate,
    CallerListOut,
    CallerListSummary,
    CallerListUpdate,
)
from callbid.domain.errors import Conflict
from callbid.domain.model import ListKind

router = APIRouter(prefix="/caller-lists", tags=["caller lists"], responses=ERRORS)

MAX_REPORTED = 20


def normalise_numbers(raw: Sequence[str]) -> list[str]:
    """E.164 forms of `raw`, de-duplicated in order; RequestValidationError listing the bad
    entries (the first MAX_REPORTED) otherwise."""
    good: dict[str, None] = {}
    errors: list[dict[str, object]] = []
    for index, text in enumerate(raw):
        e164 = to_e164(text)
        if e164 is None:
            if len(errors) < MAX_REPORTED:
                msg = f"not a valid phone number: {text!r}"
                errors.append(
                    {"loc": ("body", "numbers", index), "msg": msg, "type": "value_error"}
                )
            continue
        good[e164] = None
    if errors:
        raise RequestValidationError(errors)
    return list(good)


async def normalised(raw: Sequence[str]) -> list[str]:
    # Large lists take seconds to parse: keep the event loop answering pings meanwhile.
    if len(raw) < 1000:
        return normalise_numbers(raw)
    return await asyncio.to_thread(normalise_numbers, raw)


async def campaigns_blocking(
    session: AsyncSession, list_id: int, company_id: int
) -> list[t.Campaign]:
    """The company's campaigns that use the list as a blocked list."""
    rows = await session.scalars(select(t.Campaign).where(t.Campaign.company_id == company_id))
    return [c for c in rows if list_id in (c.blocked_list_ids or [])]


def summary(row: t.CallerList) -> CallerListSummary:
    return CallerListSummary(
        id=row.id, name=row.name, kind=ListKind(row.kind), number_count=len(row.numbers)
    )


@router.post("", status_code=201, response_model=CallerListOut, summary="Create a caller list")
async def create_list(
    body: CallerListCreate, request: Request, session: Session, company_id: CompanyId
) -> CallerListOut:
    numbers = await normalised(body.numbers)
    row = t.CallerList(company_id=company_id, name=body.name, kind=body.kind, numbers=numbers)
    session.add(row)
    await save(session, request, company_id)
    return CallerListOut.model_validate(row)


@router.get(
    "",
    response_model=list[CallerListSummary],
    summary="List caller lists",
    description="Without their numbers; read one list for those.",
)
async def list_lists(
    session: Session, company_id: CompanyId, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[CallerListSummary]:
    rows = await page(session, t.CallerList, company_id, limit, offset)
    return [summary(r) for r in rows]


@router.get("/{list_id}", response_model=CallerListOut, summary="Read a caller list")
async def read_list(list_id: int, session: Session, company_id: CompanyId) -> CallerListOut:
    return CallerListOut.model_validate(
        await owned(session, t.CallerList, list_id, company_id, "caller list")
    )


@router.patch(
    "/{list_id}",
    response_model=CallerListOut,
    summary="Change a caller list",
    description="`numbers` replaces the whole list. Turning a list into an allow list is refused "
    "(409) while a campaign uses it as a blocked list.",
)
async def update_list(
    list_id: int, body: CallerListUpdate, request: Request, session: Session, company_id: CompanyId
) -> CallerListOut:
    row = await owned(session, t.CallerList, list_id, company_id, "caller list")
    changes = body.changes("numbers")
    if body.sent("numbers"):
        changes["numbers"] = await normalised(body.numbers)
    if body.sent("kind") and body.kind is ListKind.ALLOW:
        users = await campaigns_blocking(session, row.id, company_id)
        if users:
            ids = ", ".join(str(c.id) for c in users)
            raise Conflict(f"campaigns {ids} use this list as a blocked list")
    apply(row, changes)
    await save(session, request, company_id)
    return CallerListOut.model_validate(row)


@router.delete(
    "/{list_id}",
    status_code=204,
    summary="Delete a caller list",
    description="Targets using it lose their caller list; campaigns stop blocking its numbers.",
)
async def delete_list(
    list_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    row = await owned(session, t.CallerList, list_id, company_id, "caller list")
    for campaign in await campaigns_blocking(session, row.id, company_id):
        campaign.blocked_list_ids = [i for i in campaign.blocked_list_ids if i != row.id]
    await session.delete(row)
    await save(session, request, company_id)
