"""`/conversion-criteria`: when a call converts and what it pays the publisher and the owner."""

from __future__ import annotations

from fastapi import APIRouter

from callbid.api.admin.common import (
    DEFAULT_LIMIT,
    ERRORS,
    AdminContext,
    CampaignFilter,
    Limit,
    Offset,
)
from callbid.service.admin import criteria
from callbid.service.admin.schemas import CriterionCreate, CriterionOut, CriterionUpdate

router = APIRouter(prefix="/conversion-criteria", tags=["conversion criteria"], responses=ERRORS)


@router.post(
    "", status_code=201, response_model=CriterionOut, summary="Create a conversion criterion"
)
async def create_criterion(body: CriterionCreate, admin: AdminContext) -> CriterionOut:
    return CriterionOut.model_validate(await criteria.create_criterion(admin, body))


@router.get("", response_model=list[CriterionOut], summary="List conversion criteria")
async def list_criteria(
    admin: AdminContext,
    campaign_id: CampaignFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[CriterionOut]:
    rows = await criteria.list_criteria(admin, limit, offset, campaign_id)
    return [CriterionOut.model_validate(r) for r in rows]


@router.get("/{criterion_id}", response_model=CriterionOut, summary="Read a conversion criterion")
async def read_criterion(criterion_id: int, admin: AdminContext) -> CriterionOut:
    return CriterionOut.model_validate(await criteria.read_criterion(admin, criterion_id))


@router.patch(
    "/{criterion_id}", response_model=CriterionOut, summary="Change a conversion criterion"
)
async def update_criterion(
    criterion_id: int, body: CriterionUpdate, admin: AdminContext
) -> CriterionOut:
    row = await criteria.update_criterion(admin, criterion_id, body)
    return CriterionOut.model_validate(row)


@router.delete("/{criterion_id}", status_code=204, summary="Delete a conversion criterion")
async def delete_criterion(criterion_id: int, admin: AdminContext) -> None:
    await criteria.delete_criterion(admin, criterion_id)
