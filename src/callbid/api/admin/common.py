"""HTTP glue every admin router shares: the session, company and use-case context dependencies,
paging parameters and the error shapes documented in OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.api.auth import current_company, runtime_of
from callbid.service.admin.common import DEFAULT_LIMIT
from callbid.service.admin.context import Admin
from callbid.service.admin.fields import MAX_INT

__all__ = [
    "DEFAULT_LIMIT",
    "ERRORS",
    "AdminContext",
    "CampaignFilter",
    "CompanyId",
    "Limit",
    "Offset",
    "Session",
    "admin_context",
]

MAX_LIMIT = 1000


class Failure(BaseModel):
    """Every error answer."""

    status: str = Field("failed", description="always `failed`")
    info: str = Field(description="what went wrong")


class Problem(BaseModel):
    loc: list[str] = Field(description="where: `body`, then the field path")
    msg: str


class ValidationFailure(Failure):
    """A refused body or query: every problem found, not just the first."""

    errors: list[Problem]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Failure, "description": "missing or unknown bearer token"},
    404: {"model": Failure, "description": "not found, or it belongs to another company"},
    409: {"model": Failure, "description": "conflicts with existing data"},
    422: {"model": ValidationFailure, "description": "invalid body or query"},
}


async def open_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime_of(request).sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(open_session)]
CompanyId = Annotated[int, Depends(current_company)]


async def admin_context(request: Request, session: Session, company_id: CompanyId) -> Admin:
    """The use cases' context for the token's company, on the request's session."""
    return Admin(session, runtime_of(request), company_id)


AdminContext = Annotated[Admin, Depends(admin_context)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]
CampaignFilter = Annotated[int | None, Query(ge=1, le=MAX_INT, description="only this campaign's")]
