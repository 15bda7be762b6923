"""What every configuration use case shares: tenant-scoped look-ups, reference checks, the
outbound URL check, pages, and commit-then-announce."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from callbid.adapters.buyers.guard import OutboundCheck
from callbid.adapters.storage.tables import Base
from callbid.domain.errors import Conflict, InvalidField, Loc, NotFound
from callbid.service.admin.context import Admin
from callbid.service.admin.fields import MAX_INT

Row = TypeVar("Row", bound=Base)

DEFAULT_LIMIT = 500

#: Where a passthrough's URL stands in a target's or campaign's body.
PASSTHROUGH_URL = ("passthrough", "url")


@dataclass(frozen=True, slots=True)
class Linked(Generic[Row]):
    """A row with the ids of the rows it is linked to (a target's groups, a campaign's pool)."""

    row: Row
    ids: list[int]


async def check_outbound(outbound: OutboundCheck, field: Loc, url: str | None) -> None:
    """InvalidField naming `field` when `url` would be refused by the outbound address guard
    (after resolving its host, with the operator's allow-list): an owner hears of it when
    configuring, not from failing pings."""
    if url is None:
        return
    refused = await outbound.refusal(url)
    if refused is not None:
        raise InvalidField(field, refused)


async def owned(admin: Admin, model: type[Row], row_id: object, what: str) -> Row:
    """The row with primary key `row_id` when it belongs to the admin's company.

    Raises NotFound (worded `what`) when it is missing or another company's: the two are
    indistinguishable to the caller.
    """
    if isinstance(row_id, int) and not 0 < row_id <= MAX_INT:
        raise NotFound(f"{what} not found")
    row = await admin.session.get(model, row_id)
    if row is None or getattr(row, "company_id", None) != admin.company_id:
        raise NotFound(f"{what} not found")
    return row


async def check_refs(
    admin: Admin, column: InstrumentedAttribute[int], ids: Iterable[int], field: str
) -> None:
    """NotFound naming `field` unless every id in `ids` is a row of the admin's company."""
    wanted = set(ids)
    if not wanted:
        return
    owner = column.class_.company_id
    query = select(column).where(column.in_(wanted), owner == admin.company_id)
    missing = sorted(wanted - set(await admin.session.scalars(query)))
    if missing:
        raise NotFound(f"{field}: {', '.join(map(str, missing))} not found")


async def check_ref(admin: Admin, model: type[Base], row_id: int | None, field: str) -> None:
    """NotFound naming `field` unless `row_id` is None or a row of the admin's company."""
    if row_id is not None:
        await owned(admin, model, row_id, f"{field}: {row_id}")


async def page(
    admin: Admin, model: type[Row], limit: int, offset: int, *where: ColumnElement[bool]
) -> Sequence[Row]:
    """One page of the company's rows of `model`, oldest first."""
    owner = model.__table__.c.company_id
    key = inspect(model).primary_key[0]
    query = select(model).where(owner == admin.company_id, *where).order_by(key)
    return (await admin.session.scalars(query.limit(limit).offset(offset))).all()


async def remove(admin: Admin, model: type[Base], row_id: object, what: str) -> None:
    """Delete the company's row (the database cascades to what hangs off it); NotFound else."""
    row = await owned(admin, model, row_id, what)
    await admin.session.delete(row)
    await save(admin)


def columns(row: Base) -> dict[str, Any]:
    """The row's column values by attribute name."""
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs}


def apply(row: Base, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(row, name, value)


async def commit(session: AsyncSession) -> None:
    """Commit; Conflict when the database refuses the change (a unique value taken meanwhile,
    or a referenced row deleted meanwhile)."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict("the change conflicts with existing data") from None


async def save(admin: Admin) -> None:
    """`commit`, then drop the company's cached ping configuration so that the next ping sees
    the change."""
    await commit(admin.session)
    await admin.runtime.invalidate(admin.company_id)
