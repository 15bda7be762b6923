"""`/number-pools` and `/tracking-numbers`: the numbers a campaign answers pings with."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage import tables as t
from callbid.api.admin.common import (
    DEFAULT_LIMIT,
    ERRORS,
    CampaignFilter,
    CompanyId,
    Limit,
    Offset,
    Session,
    apply,
    check_ref,
    invalid,
    owned,
    page,
    remove,
    save,
)
from callbid.api.admin.schemas import (
    NumberPoolCreate,
    NumberPoolOut,
    NumberPoolUpdate,
    TrackingNumberCreate,
    TrackingNumberOut,
    TrackingNumberUpdate,
)
from callbid.domain.errors import Conflict

pools = APIRouter(prefix="/number-pools", tags=["number pools"], responses=ERRORS)
numbers = APIRouter(prefix="/tracking-numbers", tags=["tracking numbers"], responses=ERRORS)


# --- number pools --------------------------------------------------------------------------


@pools.post("", status_code=201, response_model=NumberPoolOut, summary="Create a number pool")
async def create_pool(
    body: NumberPoolCreate, request: Request, session: Session, company_id: CompanyId
) -> NumberPoolOut:
    await check_ref(session, t.Campaign, body.campaign_id, company_id, "campaign_id")
    row = t.NumberPool(company_id=company_id, **body.model_dump(mode="json"))
    session.add(row)
    await save(session, request, company_id)
    return NumberPoolOut.model_validate(row)


@pools.get("", response_model=list[NumberPoolOut], summary="List number pools")
async def list_pools(
    session: Session,
    company_id: CompanyId,
    campaign_id: CampaignFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[NumberPoolOut]:
    where = [] if campaign_id is None else [t.NumberPool.campaign_id == campaign_id]
    rows = await page(session, t.NumberPool, company_id, limit, offset, *where)
    return [NumberPoolOut.model_validate(r) for r in rows]


@pools.get("/{pool_id}", response_model=NumberPoolOut, summary="Read a number pool")
async def read_pool(pool_id: int, session: Session, company_id: CompanyId) -> NumberPoolOut:
    return NumberPoolOut.model_validate(
        await owned(session, t.NumberPool, pool_id, company_id, "number pool")
    )


@pools.patch(
    "/{pool_id}",
    response_model=NumberPoolOut,
    summary="Change a number pool",
    description="Moving a pool to another campaign is refused (409) while it holds numbers.",
)
async def update_pool(
    pool_id: int, body: NumberPoolUpdate, request: Request, session: Session, company_id: CompanyId
) -> NumberPoolOut:
    row = await owned(session, t.NumberPool, pool_id, company_id, "number pool")
    if body.sent("campaign_id") and body.campaign_id != row.campaign_id:
        await check_ref(session, t.Campaign, body.campaign_id, company_id, "campaign_id")
        held = await session.scalar(
            select(func.count())
            .select_from(t.TrackingNumber)
            .where(t.TrackingNumber.pool_id == row.id)
        )
        if held:
            raise Conflict("the pool holds numbers of its campaign; move or delete them first")
    apply(row, body.changes())
    await save(session, request, company_id)
    return NumberPoolOut.model_validate(row)


@pools.delete(
    "/{pool_id}",
    status_code=204,
    summary="Delete a number pool",
    description="Its numbers stay on the campaign as ordinary tracking numbers.",
)
async def delete_pool(
    pool_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    await remove(session, request, t.NumberPool, pool_id, company_id, "number pool")


# --- tracking numbers ----------------------------------------------------------------------


async def check_pool(
    session: AsyncSession, pool_id: int | None, campaign_id: int, company_id: int
) -> None:
    """NotFound for another company's or a missing pool; 422 for another campaign's."""
    if pool_id is None:
        return
    pool = await owned(session, t.NumberPool, pool_id, company_id, f"pool_id: {pool_id}")
    if pool.campaign_id != campaign_id:
        raise invalid("pool_id", f"number pool {pool_id} belongs to another campaign")


async def check_number_free(session: AsyncSession, number: str, company_id: int) -> None:
    """Conflict when `number` is already a tracking number (numbers are unique across
    companies). Said precisely for the company's own; for another company's, only that it is
    not available, the same answer as a number taken by a concurrent write, so that no tenant
    learns another's numbers."""
    owner = await session.scalar(
        select(t.TrackingNumber.company_id).where(t.TrackingNumber.number == number)
    )
    if owner == company_id:
        raise Conflict(f"{number} is already a tracking number")
    if owner is not None:
        raise Conflict(f"number {number} is not available")


async def save_number(
    session: AsyncSession, request: Request, company_id: int, number: str | None
) -> None:
    """`save`; when the change claimed `number` and the database refused it, the answer
    `check_number_free` gives now that the concurrent write that took it is visible."""
    try:
        await save(session, request, company_id)
    except Conflict:
        if number is not None:
            await check_number_free(session, number, company_id)
        raise


async def check_not_inbound(session: AsyncSession, row: t.TrackingNumber) -> None:
    """Conflict while an RTB key of the number's campaign answers with it."""
    key = await session.scalar(
        select(t.RtbKey.key).where(
            t.RtbKey.campaign_id == row.campaign_id, t.RtbKey.inbound_number == row.number
        )
    )
    if key is not None:
        raise Conflict(f"{row.number} is the inbound_number of RTB key {key}; change the key first")


@numbers.post(
    "", status_code=201, response_model=TrackingNumberOut, summary="Add a tracking number"
)
async def create_number(
    body: TrackingNumberCreate, request: Request, session: Session, company_id: CompanyId
) -> TrackingNumberOut:
    await check_ref(session, t.Campaign, body.campaign_id, company_id, "campaign_id")
    await check_pool(session, body.pool_id, body.campaign_id, company_id)
    await check_number_free(session, body.number, company_id)
    row = t.TrackingNumber(company_id=company_id, **body.model_dump(mode="json"))
    session.add(row)
    await save_number(session, request, company_id, body.number)
    return TrackingNumberOut.model_validate(row)


@numbers.get("", response_model=list[TrackingNumberOut], summary="List tracking numbers")
async def list_numbers(
    session: Session,
    company_id: CompanyId,
    campaign_id: CampaignFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[TrackingNumberOut]:
    where = [] if campaign_id is None else [t.TrackingNumber.campaign_id == campaign_id]
    rows = await page(session, t.TrackingNumber, company_id, limit, offset, *where)
    return [TrackingNumberOut.model_validate(r) for r in rows]


@numbers.get("/{number_id}", response_model=TrackingNumberOut, summary="Read a tracking number")
async def read_number(number_id: int, session: Session, company_id: CompanyId) -> TrackingNumberOut:
    return TrackingNumberOut.model_validate(
        await owned(session, t.TrackingNumber, number_id, company_id, "tracking number")
    )


@numbers.patch(
    "/{number_id}",
    response_model=TrackingNumberOut,
    summary="Change a tracking number",
    description="Changing the number or its campaign is refused (409) while an RTB key answers "
    "with it as its `inbound_number`.",
)
async def update_number(
    number_id: int,
    body: TrackingNumberUpdate,
    request: Request,
    session: Session,
    company_id: CompanyId,
) -> TrackingNumberOut:
    row = await owned(session, t.TrackingNumber, number_id, company_id, "tracking number")
    campaign_id = body.campaign_id if body.sent("campaign_id") else row.campaign_id
    pool_id = body.pool_id if body.sent("pool_id") else row.pool_id
    number = body.number if body.sent("number") else row.number
    if campaign_id != row.campaign_id:
        await check_ref(session, t.Campaign, campaign_id, company_id, "campaign_id")
    if body.sent("pool_id") or campaign_id != row.campaign_id:
        await check_pool(session, pool_id, campaign_id, company_id)
    claimed = number if number != row.number else None
    if claimed is not None:
        await check_number_free(session, claimed, company_id)
    if claimed is not None or campaign_id != row.campaign_id:
        await check_not_inbound(session, row)
    apply(row, body.changes())
    await save_number(session, request, company_id, claimed)
    return TrackingNumberOut.model_validate(row)


@numbers.delete(
    "/{number_id}",
    status_code=204,
    summary="Remove a tracking number",
    description="Refused (409) while an RTB key answers with it as its `inbound_number`.",
)
async def delete_number(
    number_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    row = await owned(session, t.TrackingNumber, number_id, company_id, "tracking number")
    await check_not_inbound(session, row)
    await remove(session, request, t.TrackingNumber, number_id, company_id, "tracking number")
