"""`/company`: the company the bearer token belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from callbid.api.admin.common import ERRORS, AdminContext
from callbid.service.admin import company
from callbid.service.admin.schemas import CompanyOut, CompanyUpdate

router = APIRouter(prefix="/company", tags=["company"], responses=ERRORS)


@router.get("", response_model=CompanyOut, summary="Read the token's company")
async def read_company(admin: AdminContext) -> CompanyOut:
    return CompanyOut.model_validate(await company.read_company(admin))


@router.patch("", response_model=CompanyOut, summary="Rename the token's company")
async def update_company(body: CompanyUpdate, admin: AdminContext) -> CompanyOut:
    return CompanyOut.model_validate(await company.update_company(admin, body))
