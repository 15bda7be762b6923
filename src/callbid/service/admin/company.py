"""The company itself: what its owner may read and change of it."""

from __future__ import annotations

from callbid.adapters.storage import tables as t
from callbid.domain.errors import NotFound
from callbid.service.admin.common import apply, save
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import CompanyUpdate


async def read_company(admin: Admin) -> t.Company:
    """The admin's company; NotFound when it is gone (a cached token can outlive it)."""
    company = await admin.session.get(t.Company, admin.company_id)
    if company is None:
        raise NotFound("company not found")
    return company


async def update_company(admin: Admin, body: CompanyUpdate) -> t.Company:
    """The company with the fields sent changed."""
    company = await read_company(admin)
    apply(company, body.changes())
    await save(admin)
    return company
