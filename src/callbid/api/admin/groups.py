"""`/target-groups`: caps shared by several targets (a call counts on each group it is in)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi import APIRouter, Request
from sqlalchemy import delete, select
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
    check_refs,
    columns,
    owned,
    page,
    remove,
    save,
)
from callbid.api.admin.schemas import TargetGroupCreate, TargetGroupOut, TargetGroupUpdate

router = APIRouter(prefix="/target-groups", tags=["target groups"], responses=ERRORS)


async def members_of(session: AsyncSession, group_ids: Iterable[int]) -> dict[int, list[int]]:
    """Member target ids of each group."""
    members: dict[int, list[int]] = {}
    rows = await session.execute(
        select(t.TargetGroupMember.group_id, t.TargetGroupMember.target_id)
        .where(t.TargetGroupMember.group_id.in_(list(group_ids)))
        .order_by(t.TargetGroupMember.target_id)
    )
    for group_id, target_id in rows:
        members.setdefault(group_id, []).append(target_id)
    return members


async def set_members(session: AsyncSession, group_id: int, target_ids: Sequence[int]) -> None:
    await session.execute(
        delete(t.TargetGroupMember).where(t.TargetGroupMember.group_id == group_id)
    )
    session.add_all(t.TargetGroupMember(group_id=group_id, target_id=i) for i in target_ids)


def group_out(row: t.TargetGroup, target_ids: list[int]) -> TargetGroupOut:
    return TargetGroupOut.model_validate({**columns(row), "target_ids": target_ids})


@router.post("", status_code=201, response_model=TargetGroupOut, summary="Create a target group")
async def create_group(
    body: TargetGroupCreate, request: Request, session: Session, company_id: CompanyId
) -> TargetGroupOut:
    await check_refs(session, t.Target.id, body.target_ids, company_id, "target_ids")
    row = t.TargetGroup(
        company_id=company_id, **body.model_dump(mode="json", exclude={"target_ids"})
    )
    session.add(row)
    await session.flush()
    await set_members(session, row.id, body.target_ids)
    await save(session, request, company_id)
    return group_out(row, sorted(body.target_ids))


@router.get("", response_model=list[TargetGroupOut], summary="List target groups")
async def list_groups(
    session: Session, company_id: CompanyId, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[TargetGroupOut]:
    rows = await page(session, t.TargetGroup, company_id, limit, offset)
    members = await members_of(session, (r.id for r in rows))
    return [group_out(r, members.get(r.id, [])) for r in rows]


@router.get("/{group_id}", response_model=TargetGroupOut, summary="Read a target group")
async def read_group(group_id: int, session: Session, company_id: CompanyId) -> TargetGroupOut:
    row = await owned(session, t.TargetGroup, group_id, company_id, "target group")
    members = await members_of(session, [row.id])
    return group_out(row, members.get(row.id, []))


@router.patch("/{group_id}", response_model=TargetGroupOut, summary="Change a target group")
async def update_group(
    group_id: int,
    body: TargetGroupUpdate,
    request: Request,
    session: Session,
    company_id: CompanyId,
) -> TargetGroupOut:
    row = await owned(session, t.TargetGroup, group_id, company_id, "target group")
    if body.sent("target_ids"):
        await check_refs(session, t.Target.id, body.target_ids, company_id, "target_ids")
        await set_members(session, row.id, body.target_ids)
    apply(row, body.changes("target_ids"))
    await save(session, request, company_id)
    members = await members_of(session, [row.id])
    return group_out(row, members.get(row.id, []))


@router.delete(
    "/{group_id}",
    status_code=204,
    summary="Delete a target group",
    description="Its members stay; only the shared caps go.",
)
async def delete_group(
    group_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    await remove(session, request, t.TargetGroup, group_id, company_id, "target group")
