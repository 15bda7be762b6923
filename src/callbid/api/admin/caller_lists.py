"""`/caller-lists`: callers to refuse (block) or to accept exclusively (allow)."""

from __future__ import annotations

from fastapi import APIRouter

from callbid.adapters.storage import tables as t
from callbid.api.admin.common import DEFAULT_LIMIT, ERRORS, AdminContext, Limit, Offset
from callbid.domain.model import ListKind
from callbid.service.admin import caller_lists
from callbid.service.admin.schemas import (
    CallerListCreate,
    CallerListOut,
    CallerListSummary,
    CallerListUpdate,
)

router = APIRouter(prefix="/caller-lists", tags=["caller lists"], responses=ERRORS)


def summary(row: t.CallerList) -> CallerListSummary:
    return CallerListSummary(
        id=row.id, name=row.name, kind=ListKind(row.kind), number_count=len(row.numbers)
    )


@router.post("", status_code=201, response_model=CallerListOut, summary="Create a caller list")
async def create_list(body: CallerListCreate, admin: AdminContext) -> CallerListOut:
    return CallerListOut.model_validate(await caller_lists.create_list(admin, body))


@router.get(
    "",
    response_model=list[CallerListSummary],
    summary="List caller lists",
    description="Without their numbers; read one list for those.",
)
async def list_lists(
    admin: AdminContext, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[CallerListSummary]:
    return [summary(r) for r in await caller_lists.list_lists(admin, limit, offset)]


@router.get("/{list_id}", response_model=CallerListOut, summary="Read a caller list")
async def read_list(list_id: int, admin: AdminContext) -> CallerListOut:
    return CallerListOut.model_validate(await caller_lists.read_list(admin, list_id))


@router.patch(
    "/{list_id}",
    response_model=CallerListOut,
    summary="Change a caller list",
    description="`numbers` replaces the whole list. Turning a list into an allow list is refused "
    "(409) while a campaign uses it as a blocked list.",
)
async def update_list(list_id: int, body: CallerListUpdate, admin: AdminContext) -> CallerListOut:
    return CallerListOut.model_validate(await caller_lists.update_list(admin, list_id, body))


@router.delete(
    "/{list_id}",
    status_code=204,
    summary="Delete a caller list",
    description="Targets using it lose their caller list; campaigns stop blocking its numbers.",
)
async def delete_list(list_id: int, admin: AdminContext) -> None:
    await caller_lists.delete_list(admin, list_id)
