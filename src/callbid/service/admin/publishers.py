"""Publishers: lead sources known to the company, with their own caps and schedule."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from callbid.adapters.storage import tables as t
from callbid.domain.errors import Conflict
from callbid.service.admin.common import apply, owned, page, remove, save
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import PublisherCreate, PublisherUpdate


async def check_publisher_id_free(admin: Admin, publisher_id: str) -> None:
    """Conflict when the company already has a publisher with this `publisher_id`."""
    taken = await admin.session.scalar(
        select(t.Publisher.id).where(
            t.Publisher.company_id == admin.company_id, t.Publisher.publisher_id == publisher_id
        )
    )
    if taken is not None:
        raise Conflict(f"publisher_id {publisher_id!r} is already taken (publisher {taken})")


async def create_publisher(admin: Admin, body: PublisherCreate) -> t.Publisher:
    """A new publisher of the company; Conflict when its `publisher_id` is taken."""
    await check_publisher_id_free(admin, body.publisher_id)
    row = t.Publisher(company_id=admin.company_id, **body.model_dump(mode="json"))
    admin.session.add(row)
    await save(admin)
    return row


async def list_publishers(admin: Admin, limit: int, offset: int) -> Sequence[t.Publisher]:
    """One page of the company's publishers, oldest first."""
    return await page(admin, t.Publisher, limit, offset)


async def read_publisher(admin: Admin, publisher_row_id: int) -> t.Publisher:
    """The company's publisher; NotFound else."""
    return await owned(admin, t.Publisher, publisher_row_id, "publisher")


async def update_publisher(
    admin: Admin, publisher_row_id: int, body: PublisherUpdate
) -> t.Publisher:
    """The publisher with the fields sent changed; Conflict for a taken `publisher_id`."""
    row = await owned(admin, t.Publisher, publisher_row_id, "publisher")
    if body.sent("publisher_id") and body.publisher_id != row.publisher_id:
        await check_publisher_id_free(admin, body.publisher_id)
    apply(row, body.changes())
    await save(admin)
    return row


async def delete_publisher(admin: Admin, publisher_row_id: int) -> None:
    """Delete the company's publisher; NotFound else."""
    await remove(admin, t.Publisher, publisher_row_id, "publisher")
