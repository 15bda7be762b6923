"""`/number-pools` and `/tracking-numbers`: the numbers a campaign answers pings with."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.api.admin.common import (
    DEFAULT_LIMIT,
    ERRORS,
    AdminContext,
    CampaignFilter,
    Limit,
    Offset,
)
from callbid.api.auth import runtime_of
from callbid.service.admin import numbers as uses
from callbid.service.admin.schemas import (
    NumberPoolCreate,
    NumberPoolOut,
    NumberPoolUpdate,
    TrackingNumberCreate,
    TrackingNumberOut,
    TrackingNumberUpdate,
)

pools = APIRouter(prefix="/number-pools", tags=["number pools"], responses=ERRORS)
numbers = APIRouter(prefix="/tracking-numbers", tags=["tracking numbers"], responses=ERRORS)


async def save_number(
    session: AsyncSession, request: Request, company_id: int, number: str | None
) -> None:
    """`service.admin.numbers.save_number` for a caller holding the session and the request
    rather than a use-case context; the request is only looked at once the change is in."""
    await uses.commit_number(session, company_id, number)
    await runtime_of(request).invalidate(company_id)


# --- number pools --------------------------------------------------------------------------


@pools.post("", status_code=201, response_model=NumberPoolOut, summary="Create a number pool")
async def create_pool(body: NumberPoolCreate, admin: AdminContext) -> NumberPoolOut:
    return NumberPoolOut.model_validate(await uses.create_pool(admin, body))


@pools.get("", response_model=list[NumberPoolOut], summary="List number pools")
async def list_pools(
    admin: AdminContext,
    campaign_id: CampaignFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[NumberPoolOut]:
    rows = await uses.list_pools(admin, limit, offset, campaign_id)
    return [NumberPoolOut.model_validate(r) for r in rows]


@pools.get("/{pool_id}", response_model=NumberPoolOut, summary="Read a number pool")
async def read_pool(pool_id: int, admin: AdminContext) -> NumberPoolOut:
    return NumberPoolOut.model_validate(await uses.read_pool(admin, pool_id))


@pools.patch(
    "/{pool_id}",
    response_model=NumberPoolOut,
    summary="Change a number pool",
    description="Moving a pool to another campaign is refused (409) while it holds numbers.",
)
async def update_pool(pool_id: int, body: NumberPoolUpdate, admin: AdminContext) -> NumberPoolOut:
    return NumberPoolOut.model_validate(await uses.update_pool(admin, pool_id, body))


@pools.delete(
    "/{pool_id}",
    status_code=204,
    summary="Delete a number pool",
    description="Its numbers stay on the campaign as ordinary tracking numbers.",
)
async def delete_pool(pool_id: int, admin: AdminContext) -> None:
    await uses.delete_pool(admin, pool_id)


# --- tracking numbers ----------------------------------------------------------------------


@numbers.post(
    "", status_code=201, response_model=TrackingNumberOut, summary="Add a tracking number"
)
async def create_number(body: TrackingNumberCreate, admin: AdminContext) -> TrackingNumberOut:
    return TrackingNumberOut.model_validate(await uses.create_number(admin, body))


@numbers.get("", response_model=list[TrackingNumberOut], summary="List tracking numbers")
async def list_numbers(
    admin: AdminContext,
    campaign_id: CampaignFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[TrackingNumberOut]:
    rows = await uses.list_numbers(admin, limit, offset, campaign_id)
    return [TrackingNumberOut.model_validate(r) for r in rows]


@numbers.get("/{number_id}", response_model=TrackingNumberOut, summary="Read a tracking number")
async def read_number(number_id: int, admin: AdminContext) -> TrackingNumberOut:
    return TrackingNumberOut.model_validate(await uses.read_number(admin, number_id))


@numbers.patch(
    "/{number_id}",
    response_model=TrackingNumberOut,
    summary="Change a tracking number",
    description="Changing the number or its campaign is refused (409) while an RTB key answers "
    "with it as its `inbound_number`.",
)
async def update_number(
    number_id: int, body: TrackingNumberUpdate, admin: AdminContext
) -> TrackingNumberOut:
    return TrackingNumberOut.model_validate(await uses.update_number(admin, number_id, body))


@numbers.delete(
    "/{number_id}",
    status_code=204,
    summary="Remove a tracking number",
    description="Refused (409) while an RTB key answers with it as its `inbound_number`.",
)
async def delete_number(number_id: int, admin: AdminContext) -> None:
    await uses.delete_number(admin, number_id)
