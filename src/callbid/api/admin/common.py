"""What every admin router shares: the session and company dependencies, tenant-scoped look-ups,
commit-then-invalidate and the error shapes documented in OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import ColumnElement, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from callbid.adapters.storage.tables import Base
from callbid.api.admin.fields import MAX_INT, Failure, ValidationFailure
from callbid.api.auth import current_company, runtime_of
from callbid.domain.errors import Conflict, NotFound

Row = TypeVar("Row", bound=Base)

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000

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
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]
CampaignFilter = Annotated[int | None, Query(ge=1, le=MAX_INT, description="only this campaign's")]


def invalid(field: str | tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 naming `field` of the body (a path for a nested one), shaped like pydantic's own
    validation errors."""
    path = (field,) if isinstance(field, str) else field
    return RequestValidationError([{"loc": ("body", *path), "msg": message, "type": "value_error"}])


#: Where a passthrough's URL stands in a target's or campaign's body.
PASSTHROUGH_URL = ("passthrough", "url")


async def check_outbound(request: Request, field: tuple[str, ...], url: str | None) -> None:
    """422 naming `field` when `url` would be refused by the outbound address guard (after
    resolving its host, with the operator's allow-list): an owner hears of it when
    configuring, not from failing pings."""
    if url is None:
        return
    refused = await runtime_of(request).outbound.refusal(url)
    if refused is not None:
        raise invalid(field, refused)


async def owned(
    session: AsyncSession, model: type[Row], row_id: object, company_id: int, what: str
) -> Row:
    """The row with primary key `row_id` when it belongs to `company_id`.

    Raises NotFound (worded `what`) when it is missing or another company's: the two are
    indistinguishable to the caller.
    """
    if isinstance(row_id, int) and not 0 < row_id <= MAX_INT:
        raise NotFound(f"{what} not found")
    row = await session.get(model, row_id)
    if row is None or getattr(row, "company_id", None) != company_id:
        raise NotFound(f"{what} not found")
    return row


async def check_refs(
    session: AsyncSession,
    column: InstrumentedAttribute[int],
    ids: Iterable[int],
    company_id: int,
    field: str,
) -> None:
    """NotFound naming `field` unless every id in `ids` is a row of `company_id`."""
    wanted = set(ids)
    if not wanted:
        return
    owner = column.class_.company_id
    found = set(
        await session.scalars(select(column).where(column.in_(wanted), owner == company_id))
    )
    missing = sorted(wanted - found)
    if missing:
        raise NotFound(f"{field}: {', '.join(map(str, missing))} not found")


async def check_ref(
    session: AsyncSession, model: type[Base], row_id: int | None, company_id: int, field: str
) -> None:
    """NotFound naming `field` unless `row_id` is None or a row of `company_id`."""
    if row_id is not None:
        await owned(session, model, row_id, company_id, f"{field}: {row_id}")


async def page(
    session: AsyncSession,
    model: type[Row],
    company_id: int,
    limit: int,
    offset: int,
    *where: ColumnElement[bool],
) -> Sequence[Row]:
    """One page of the company's rows of `model`, oldest first."""
    owner = model.__table__.c.company_id
    key = inspect(model).primary_key[0]
    query = select(model).where(owner == company_id, *where).order_by(key)
    return (await session.scalars(query.limit(limit).offset(offset))).all()


async def remove(
    session: AsyncSession,
    request: Request,
    model: type[Base],
    row_id: object,
    company_id: int,
    what: str,
) -> None:
    """Delete the company's row (the database cascades to what hangs off it); NotFound else."""
    row = await owned(session, model, row_id, company_id, what)
    await session.delete(row)
    await save(session, request, company_id)


def columns(row: Base) -> dict[str, Any]:
    """The row's column values by attribute name."""
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs}


def apply(row: Base, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(row, name, value)


async def save(session: AsyncSession, request: Request, company_id: int) -> None:
    """Commit, then drop the company's cached ping configuration.

    Raises Conflict when the database refuses the change (a unique value taken meanwhile, or
    a referenced row deleted meanwhile).
    """
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict("the change conflicts with existing data") from None
    await runtime_of(request).invalidate(company_id)
