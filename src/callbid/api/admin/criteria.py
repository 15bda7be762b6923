"""`/conversion-criteria`: when a call converts and what it pays the publisher and the owner."""

from __future__ import annotations

from fastapi import APIRouter, Request

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
from callbid.api.admin.schemas import CriterionCreate, CriterionOut, CriterionUpdate, check_payout
from callbid.domain.model import PayoutKind

router = APIRouter(prefix="/conversion-criteria", tags=["conversion criteria"], responses=ERRORS)


@router.post(
    "", status_code=201, response_model=CriterionOut, summary="Create a conversion criterion"
)
async def create_criterion(
    body: CriterionCreate, request: Request, session: Session, company_id: CompanyId
) -> CriterionOut:
    await check_ref(session, t.Campaign, body.campaign_id, company_id, "campaign_id")
    row = t.ConversionCriterion(company_id=company_id, **body.model_dump(mode="json"))
    session.add(row)
    await save(session, request, company_id)
    return CriterionOut.model_validate(row)


@router.get("", response_model=list[CriterionOut], summary="List conversion criteria")
async def list_criteria(
    session: Session,
    company_id: CompanyId,
    campaign_id: CampaignFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[CriterionOut]:
    where = [] if campaign_id is None else [t.ConversionCriterion.campaign_id == campaign_id]
    rows = await page(session, t.ConversionCriterion, company_id, limit, offset, *where)
    return [CriterionOut.model_validate(r) for r in rows]


@router.get("/{criterion_id}", response_model=CriterionOut, summary="Read a conversion criterion")
async def read_criterion(
    criterion_id: int, session: Session, company_id: CompanyId
) -> CriterionOut:
    return CriterionOut.model_validate(
        await owned(
            session, t.ConversionCriterion, criterion_id, company_id, "conversion criterion"
        )
    )


@router.patch(
    "/{criterion_id}", response_model=CriterionOut, summary="Change a conversion criterion"
)
async def update_criterion(
    criterion_id: int,
    body: CriterionUpdate,
    request: Request,
    session: Session,
    company_id: CompanyId,
) -> CriterionOut:
    row = await owned(
        session, t.ConversionCriterion, criterion_id, company_id, "conversion criterion"
    )
    if body.sent("campaign_id"):
        await check_ref(session, t.Campaign, body.campaign_id, company_id, "campaign_id")
    kind = body.payout_kind if body.sent("payout_kind") else PayoutKind(row.payout_kind)
    payout = body.payout if body.sent("payout") else row.payout
    try:
        check_payout(kind, payout)
    except ValueError as exc:
        raise invalid("payout", str(exc)) from None
    apply(row, body.changes())
    await save(session, request, company_id)
    return CriterionOut.model_validate(row)


@router.delete("/{criterion_id}", status_code=204, summary="Delete a conversion criterion")
async def delete_criterion(
    criterion_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    await remove(
        session, request, t.ConversionCriterion, criterion_id, company_id, "conversion criterion"
    )
