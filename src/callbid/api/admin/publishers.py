"""`/publishers`: lead sources known to the company, with their own caps and schedule."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
    remove,
    save,
)
from callbid.api.admin.schemas import PublisherCreate, PublisherOut, PublisherUpdate
from callbid.domain.errors import Conflict

router = APIRouter(prefix="/publishers", tags=["publishers"], responses=ERRORS)


async def check_publisher_id_free(
    session: AsyncSession, publisher_id: str, company_id: int
) -> None:
    """Conflict when the company already has a publisher with this `publisher_id`."""
    taken = await session.scalar(
        select(t.Publisher.id).where(
            t.Publisher.company_id == company_id, t.Publisher.publisher_id == publisher_id
        )
    )
    if taken is not None:
        raise Conflict(f"publisher_id {publisher_id!r} is already taken (publisher {taken})")


@router.post("", status_code=201, response_model=PublisherOut, summary="Register a publisher")
async def create_publisher(
    body: PublisherCreate, request: Request, session: Session, company_id: CompanyId
) -> PublisherOut:
    await check_publisher_id_free(session, body.publisher_id, company_id)
    row = t.Publisher(company_id=company_id, **body.model_dump(mode="json"))
    session.add(row)
    await save(session, request, company_id)
    return PublisherOut.model_validate(row)


@router.get("", response_model=list[PublisherOut], summary="List publishers")
async def list_publishers(
    session: Session, company_id: CompanyId, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[PublisherOut]:
    rows = await page(session, t.Publisher, company_id, limit, offset)
    return [PublisherOut.model_validate(r) for r in rows]


@router.get("/{publisher_row_id}", response_model=PublisherOut, summary="Read a publisher")
async def read_publisher(
    publisher_row_id: int, session: Session, company_id: CompanyId
) -> PublisherOut:
    return PublisherOut.model_validate(
        await owned(session, t.Publisher, publisher_row_id, company_id, "publisher")
    )


@router.patch("/{publisher_row_id}", response_model=PublisherOut, summary="Change a publisher")
async def update_publisher(
    publisher_row_id: int,
    body: PublisherUpdate,
    request: Request,
    session: Session,
    company_id: CompanyId,
) -> PublisherOut:
    row = await owned(session, t.Publisher, publisher_row_id, company_id, "publisher")
    if body.sent("publisher_id") and body.publisher_id != row.publisher_id:
        await check_publisher_id_free(session, body.publisher_id, company_id)
    apply(row, body.changes())
    await save(session, request, company_id)
    return PublisherOut.model_validate(row)


@router.delete("/{publisher_row_id}", status_code=204, summary="Delete a publisher")
async def delete_publisher(
    publisher_row_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    await remove(session, request, t.Publisher, publisher_row_id, company_id, "publisher")
