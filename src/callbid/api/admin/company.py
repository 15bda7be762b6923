"""`/company`: the company the bearer token belongs to."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage import tables as t
from callbid.api.admin.common import ERRORS, CompanyId, Session, apply, save
from callbid.api.admin.schemas import CompanyOut, CompanyUpdate
from callbid.domain.errors import NotFound

router = APIRouter(prefix="/company", tags=["company"], responses=ERRORS)


async def load_company(session: AsyncSession, company_id: int) -> t.Company:
    company = await session.get(t.Company, company_id)
    if company is None:
        # A cached token can outlive its company.
        raise NotFound("company not found")
    return company


@router.get("", response_model=CompanyOut, summary="Read the token's company")
async def read_company(session: Session, company_id: CompanyId) -> CompanyOut:
    return CompanyOut.model_validate(await load_company(session, company_id))


@router.patch("", response_model=CompanyOut, summary="Rename the token's company")
async def update_company(
    body: CompanyUpdate, request: Request, session: Session, company_id: CompanyId
) -> CompanyOut:
    company = await load_company(session, company_id)
    apply(company, body.changes())
    await save(session, request, company_id)
    return CompanyOut.model_validate(company)
