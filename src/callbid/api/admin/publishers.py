"""`/publishers`: lead sources known to the company, with their own caps and schedule."""

from __future__ import annotations

from fastapi import APIRouter

from callbid.api.admin.common import DEFAULT_LIMIT, ERRORS, AdminContext, Limit, Offset
from callbid.service.admin import publishers
from callbid.service.admin.schemas import PublisherCreate, PublisherOut, PublisherUpdate

router = APIRouter(prefix="/publishers", tags=["publishers"], responses=ERRORS)


@router.post("", status_code=201, response_model=PublisherOut, summary="Register a publisher")
async def create_publisher(body: PublisherCreate, admin: AdminContext) -> PublisherOut:
    return PublisherOut.model_validate(await publishers.create_publisher(admin, body))


@router.get("", response_model=list[PublisherOut], summary="List publishers")
async def list_publishers(
    admin: AdminContext, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[PublisherOut]:
    rows = await publishers.list_publishers(admin, limit, offset)
    return [PublisherOut.model_validate(r) for r in rows]


@router.get("/{publisher_row_id}", response_model=PublisherOut, summary="Read a publisher")
async def read_publisher(publisher_row_id: int, admin: AdminContext) -> PublisherOut:
    return PublisherOut.model_validate(await publishers.read_publisher(admin, publisher_row_id))


@router.patch("/{publisher_row_id}", response_model=PublisherOut, summary="Change a publisher")
async def update_publisher(
    publisher_row_id: int, body: PublisherUpdate, admin: AdminContext
) -> PublisherOut:
    row = await publishers.update_publisher(admin, publisher_row_id, body)
    return PublisherOut.model_validate(row)


@router.delete("/{publisher_row_id}", status_code=204, summary="Delete a publisher")
async def delete_publisher(publisher_row_id: int, admin: AdminContext) -> None:
    await publishers.delete_publisher(admin, publisher_row_id)
