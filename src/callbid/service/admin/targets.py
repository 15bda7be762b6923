"""Targets (buyers), with hours, caps, filters and their target-group memberships."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select

from callbid.adapters.storage import tables as t
from callbid.service.admin.common import (
    PASSTHROUGH_URL,
    Linked,
    apply,
    check_outbound,
    check_ref,
    check_refs,
    owned,
    page,
    remove,
    save,
)
from callbid.service.admin.context import Admin
from callbid.service.admin.passthrough import passthrough_url
from callbid.service.admin.schemas import TargetCreate, TargetUpdate

Target = Linked[t.Target]
"""A target with the ids of its groups."""


async def groups_of(admin: Admin, target_ids: Iterable[int]) -> dict[int, list[int]]:
    """Group ids of each target."""
    groups: dict[int, list[int]] = {}
    rows = await admin.session.execute(
        select(t.TargetGroupMember.target_id, t.TargetGroupMember.group_id)
        .where(t.TargetGroupMember.target_id.in_(list(target_ids)))
        .order_by(t.TargetGroupMember.group_id)
    )
    for target_id, group_id in rows:
        groups.setdefault(target_id, []).append(group_id)
    return groups


async def set_groups(admin: Admin, target_id: int, group_ids: Sequence[int]) -> None:
    session = admin.session
    await session.execute(
        delete(t.TargetGroupMember).where(t.TargetGroupMember.target_id == target_id)
    )
    session.add_all(t.TargetGroupMember(group_id=g, target_id=target_id) for g in group_ids)


async def with_groups(admin: Admin, row: t.Target) -> Target:
    groups = await groups_of(admin, [row.id])
    return Linked(row, groups.get(row.id, []))


async def create_target(admin: Admin, body: TargetCreate) -> Target:
    """A new target of the company. NotFound for another company's caller list or group;
    InvalidField for a passthrough URL the outbound guard refuses."""
    await check_ref(admin, t.CallerList, body.caller_list_id, "caller_list_id")
    await check_refs(admin, t.TargetGroup.id, body.group_ids, "group_ids")
    await check_outbound(admin.runtime.outbound, PASSTHROUGH_URL, passthrough_url(body.passthrough))
    fields = body.model_dump(mode="json", exclude={"group_ids"})
    row = t.Target(company_id=admin.company_id, **fields)
    admin.session.add(row)
    await admin.session.flush()
    await set_groups(admin, row.id, body.group_ids)
    await save(admin)
    return await with_groups(admin, row)


async def list_targets(admin: Admin, limit: int, offset: int) -> list[Target]:
    """One page of the company's targets, oldest first."""
    rows = await page(admin, t.Target, limit, offset)
    groups = await groups_of(admin, (r.id for r in rows))
    return [Linked(r, groups.get(r.id, [])) for r in rows]


async def read_target(admin: Admin, target_id: int) -> Target:
    """The company's target; NotFound else."""
    return await with_groups(admin, await owned(admin, t.Target, target_id, "target"))


async def update_target(admin: Admin, target_id: int, body: TargetUpdate) -> Target:
    """The target with the fields sent changed (`group_ids` replaces its memberships); the
    same refusals as `create_target`."""
    row = await owned(admin, t.Target, target_id, "target")
    if body.sent("passthrough"):
        url = passthrough_url(body.passthrough)
        await check_outbound(admin.runtime.outbound, PASSTHROUGH_URL, url)
    if body.sent("caller_list_id"):
        await check_ref(admin, t.CallerList, body.caller_list_id, "caller_list_id")
    if body.sent("group_ids"):
        await check_refs(admin, t.TargetGroup.id, body.group_ids, "group_ids")
        await set_groups(admin, row.id, body.group_ids)
    apply(row, body.changes("group_ids"))
    await save(admin)
    return await with_groups(admin, row)


async def delete_target(admin: Admin, target_id: int) -> None:
    """Delete the company's target, also from every routing pool and group; NotFound else."""
    await remove(admin, t.Target, target_id, "target")
