"""`/targets`: buyers, with hours, caps, filters and their target-group memberships."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi import APIRouter, Request
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage import tables as t
from callbid.api.admin.common import (
    DEFAULT_LIMIT,
    ERRORS,
    PASSTHROUGH_URL,
    CompanyId,
    Limit,
    Offset,
    Session,
    apply,
    check_outbound,
    check_ref,
    check_refs,
    columns,
    owned,
    page,
    remove,
    save,
)
from callbid.api.admin.passthrough import passthrough_url
from callbid.api.admin.schemas import TargetCreate, TargetOut, TargetUpdate

router = APIRouter(prefix="/targets", tags=["targets"], responses=ERRORS)


async def groups_of(session: AsyncSession, target_ids: Iterable[int]) -> dict[int, list[int]]:
    """Group ids of each target."""
    groups: dict[int, list[int]] = {}
    rows = await session.execute(
        select(t.TargetGroupMember.target_id, t.TargetGroupMember.group_id)
        .where(t.TargetGroupMember.target_id.in_(list(target_ids)))
        .order_by(t.TargetGroupMember.group_id)
    )
    for target_id, group_id in rows:
        groups.setdefault(target_id, []).append(group_id)
    return groups


async def set_groups(session: AsyncSession, target_id: int, group_ids: Sequence[int]) -> None:
    await session.execute(
        delete(t.TargetGroupMember).where(t.TargetGroupMember.target_id == target_id)
    )
    session.add_all(t.TargetGroupMember(group_id=g, target_id=target_id) for g in group_ids)


async def target_out(session: AsyncSession, row: t.Target) -> TargetOut:
    groups = await groups_of(session, [row.id])
    return TargetOut.model_validate({**columns(row), "group_ids": groups.get(row.id, [])})


@router.post("", status_code=201, response_model=TargetOut, summary="Create a target (buyer)")
async def create_target(
    body: TargetCreate, request: Request, session: Session, company_id: CompanyId
) -> TargetOut:
    await check_ref(session, t.CallerList, body.caller_list_id, company_id, "caller_list_id")
    await check_refs(session, t.TargetGroup.id, body.group_ids, company_id, "group_ids")
    await check_outbound(request, PASSTHROUGH_URL, passthrough_url(body.passthrough))
    row = t.Target(company_id=company_id, **body.model_dump(mode="json", exclude={"group_ids"}))
    session.add(row)
    await session.flush()
    await set_groups(session, row.id, body.group_ids)
    await save(session, request, company_id)
    return await target_out(session, row)


@router.get("", response_model=list[TargetOut], summary="List targets")
async def list_targets(
    session: Session, company_id: CompanyId, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[TargetOut]:
    rows = await page(session, t.Target, company_id, limit, offset)
    groups = await groups_of(session, (r.id for r in rows))
    return [
        TargetOut.model_validate({**columns(r), "group_ids": groups.get(r.id, [])}) for r in rows
    ]


@router.get("/{target_id}", response_model=TargetOut, summary="Read a target")
async def read_target(target_id: int, session: Session, company_id: CompanyId) -> TargetOut:
    return await target_out(
        session, await owned(session, t.Target, target_id, company_id, "target")
    )


@router.patch("/{target_id}", response_model=TargetOut, summary="Change a target")
async def update_target(
    target_id: int, body: TargetUpdate, request: Request, session: Session, company_id: CompanyId
) -> TargetOut:
    row = await owned(session, t.Target, target_id, company_id, "target")
    if body.sent("passthrough"):
        await check_outbound(request, PASSTHROUGH_URL, passthrough_url(body.passthrough))
    if body.sent("caller_list_id"):
        await check_ref(session, t.CallerList, body.caller_list_id, company_id, "caller_list_id")
    if body.sent("group_ids"):
        await check_refs(session, t.TargetGroup.id, body.group_ids, company_id, "group_ids")
        await set_groups(session, row.id, body.group_ids)
    apply(row, body.changes("group_ids"))
    await save(session, request, company_id)
    return await target_out(session, row)


@router.delete(
    "/{target_id}",
    status_code=204,
    summary="Delete a target",
    description="Also removes it from every campaign's routing pool and every target group.",
)
async def delete_target(
    target_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    await remove(session, request, t.Target, target_id, company_id, "target")
