"""Number pools and tracking numbers: the numbers a campaign answers pings with."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage import tables as t
from callbid.domain.errors import Conflict, InvalidField
from callbid.service.admin.common import apply, check_ref, commit, owned, page, remove, save
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import (
    NumberPoolCreate,
    NumberPoolUpdate,
    TrackingNumberCreate,
    TrackingNumberUpdate,
)

# --- number pools --------------------------------------------------------------------------


async def create_pool(admin: Admin, body: NumberPoolCreate) -> t.NumberPool:
    """A new pool of one of the company's campaigns; NotFound for another's campaign."""
    await check_ref(admin, t.Campaign, body.campaign_id, "campaign_id")
    row = t.NumberPool(company_id=admin.company_id, **body.model_dump(mode="json"))
    admin.session.add(row)
    await save(admin)
    return row


async def list_pools(
    admin: Admin, limit: int, offset: int, campaign_id: int | None = None
) -> Sequence[t.NumberPool]:
    """One page of the company's pools (only `campaign_id`'s when given), oldest first."""
    where = [] if campaign_id is None else [t.NumberPool.campaign_id == campaign_id]
    return await page(admin, t.NumberPool, limit, offset, *where)


async def read_pool(admin: Admin, pool_id: int) -> t.NumberPool:
    """The company's pool; NotFound else."""
    return await owned(admin, t.NumberPool, pool_id, "number pool")


async def update_pool(admin: Admin, pool_id: int, body: NumberPoolUpdate) -> t.NumberPool:
    """The pool with the fields sent changed; moving it to another campaign is a Conflict
    while it holds numbers."""
    row = await owned(admin, t.NumberPool, pool_id, "number pool")
    if body.sent("campaign_id") and body.campaign_id != row.campaign_id:
        await check_ref(admin, t.Campaign, body.campaign_id, "campaign_id")
        held = await admin.session.scalar(
            select(func.count())
            .select_from(t.TrackingNumber)
            .where(t.TrackingNumber.pool_id == row.id)
        )
        if held:
            raise Conflict("the pool holds numbers of its campaign; move or delete them first")
    apply(row, body.changes())
    await save(admin)
    return row


async def delete_pool(admin: Admin, pool_id: int) -> None:
    """Delete the company's pool; its numbers stay on the campaign as ordinary ones."""
    await remove(admin, t.NumberPool, pool_id, "number pool")


# --- tracking numbers ----------------------------------------------------------------------


async def check_pool(admin: Admin, pool_id: int | None, campaign_id: int) -> None:
    """NotFound for another company's or a missing pool; InvalidField for another
    campaign's."""
    if pool_id is None:
        return
    pool = await owned(admin, t.NumberPool, pool_id, f"pool_id: {pool_id}")
    if pool.campaign_id != campaign_id:
        raise InvalidField(("pool_id",), f"number pool {pool_id} belongs to another campaign")


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


async def commit_number(session: AsyncSession, company_id: int, number: str | None) -> None:
    """`commit`; when the change claimed `number` and the database refused it, the answer
    `check_number_free` gives now that the concurrent write that took it is visible."""
    try:
        await commit(session)
    except Conflict:
        if number is not None:
            await check_number_free(session, number, company_id)
        raise


async def save_number(admin: Admin, number: str | None) -> None:
    """`commit_number`, then drop the company's cached ping configuration."""
    await commit_number(admin.session, admin.company_id, number)
    await admin.runtime.invalidate(admin.company_id)


async def check_not_inbound(admin: Admin, row: t.TrackingNumber) -> None:
    """Conflict while an RTB key of the number's campaign answers with it."""
    key = await admin.session.scalar(
        select(t.RtbKey.key).where(
            t.RtbKey.campaign_id == row.campaign_id, t.RtbKey.inbound_number == row.number
        )
    )
    if key is not None:
        raise Conflict(f"{row.number} is the inbound_number of RTB key {key}; change the key first")


async def create_number(admin: Admin, body: TrackingNumberCreate) -> t.TrackingNumber:
    """A new tracking number of one of the company's campaigns. NotFound for another's
    campaign or pool; InvalidField for another campaign's pool; Conflict for a taken number."""
    await check_ref(admin, t.Campaign, body.campaign_id, "campaign_id")
    await check_pool(admin, body.pool_id, body.campaign_id)
    await check_number_free(admin.session, body.number, admin.company_id)
    row = t.TrackingNumber(company_id=admin.company_id, **body.model_dump(mode="json"))
    admin.session.add(row)
    await save_number(admin, body.number)
    return row


async def list_numbers(
    admin: Admin, limit: int, offset: int, campaign_id: int | None = None
) -> Sequence[t.TrackingNumber]:
    """One page of the company's numbers (only `campaign_id`'s when given), oldest first."""
    where = [] if campaign_id is None else [t.TrackingNumber.campaign_id == campaign_id]
    return await page(admin, t.TrackingNumber, limit, offset, *where)


async def read_number(admin: Admin, number_id: int) -> t.TrackingNumber:
    """The company's tracking number; NotFound else."""
    return await owned(admin, t.TrackingNumber, number_id, "tracking number")


async def update_number(
    admin: Admin, number_id: int, body: TrackingNumberUpdate
) -> t.TrackingNumber:
    """The number with the fields sent changed; the same refusals as `create_number`, and a
    Conflict for changing the number or its campaign while an RTB key answers with it."""
    row = await owned(admin, t.TrackingNumber, number_id, "tracking number")
    campaign_id = body.campaign_id if body.sent("campaign_id") else row.campaign_id
    pool_id = body.pool_id if body.sent("pool_id") else row.pool_id
    number = body.number if body.sent("number") else row.number
    if campaign_id != row.campaign_id:
        await check_ref(admin, t.Campaign, campaign_id, "campaign_id")
    if body.sent("pool_id") or campaign_id != row.campaign_id:
        await check_pool(admin, pool_id, campaign_id)
    claimed = number if number != row.number else None
    if claimed is not None:
        await check_number_free(admin.session, claimed, admin.company_id)
    if claimed is not None or campaign_id != row.campaign_id:
        await check_not_inbound(admin, row)
    apply(row, body.changes())
    await save_number(admin, claimed)
    return row


async def delete_number(admin: Admin, number_id: int) -> None:
    """Remove the company's tracking number; Conflict while an RTB key answers with it."""
    row = await owned(admin, t.TrackingNumber, number_id, "tracking number")
    await check_not_inbound(admin, row)
    await remove(admin, t.TrackingNumber, number_id, "tracking number")
