"""Target groups: caps shared by several targets (a call counts on each group it is in)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select

from callbid.adapters.storage import tables as t
from callbid.service.admin.common import Linked, apply, check_refs, owned, page, remove, save
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import TargetGroupCreate, TargetGroupUpdate

Group = Linked[t.TargetGroup]
"""A target group with the ids of its member targets."""


async def members_of(admin: Admin, group_ids: Iterable[int]) -> dict[int, list[int]]:
    """Member target ids of each group."""
    members: dict[int, list[int]] = {}
    rows = await admin.session.execute(
        select(t.TargetGroupMember.group_id, t.TargetGroupMember.target_id)
        .where(t.TargetGroupMember.group_id.in_(list(group_ids)))
        .order_by(t.TargetGroupMember.target_id)
    )
    for group_id, target_id in rows:
        members.setdefault(group_id, []).append(target_id)
    return members


async def set_members(admin: Admin, group_id: int, target_ids: Sequence[int]) -> None:
    session = admin.session
    await session.execute(
        delete(t.TargetGroupMember).where(t.TargetGroupMember.group_id == group_id)
    )
    session.add_all(t.TargetGroupMember(group_id=group_id, target_id=i) for i in target_ids)


async def with_members(admin: Admin, row: t.TargetGroup) -> Group:
    members = await members_of(admin, [row.id])
    return Linked(row, members.get(row.id, []))


async def create_group(admin: Admin, body: TargetGroupCreate) -> Group:
    """A new target group of the company; NotFound for another company's target."""
    await check_refs(admin, t.Target.id, body.target_ids, "target_ids")
    fields = body.model_dump(mode="json", exclude={"target_ids"})
    row = t.TargetGroup(company_id=admin.company_id, **fields)
    admin.session.add(row)
    await admin.session.flush()
    await set_members(admin, row.id, body.target_ids)
    await save(admin)
    return Linked(row, sorted(body.target_ids))


async def list_groups(admin: Admin, limit: int, offset: int) -> list[Group]:
    """One page of the company's target groups, oldest first."""
    rows = await page(admin, t.TargetGroup, limit, offset)
    members = await members_of(admin, (r.id for r in rows))
    return [Linked(r, members.get(r.id, [])) for r in rows]


async def read_group(admin: Admin, group_id: int) -> Group:
    """The company's target group; NotFound else."""
    return await with_members(admin, await owned(admin, t.TargetGroup, group_id, "target group"))


async def update_group(admin: Admin, group_id: int, body: TargetGroupUpdate) -> Group:
    """The group with the fields sent changed (`target_ids` replaces its members)."""
    row = await owned(admin, t.TargetGroup, group_id, "target group")
    if body.sent("target_ids"):
        await check_refs(admin, t.Target.id, body.target_ids, "target_ids")
        await set_members(admin, row.id, body.target_ids)
    apply(row, body.changes("target_ids"))
    await save(admin)
    return await with_members(admin, row)


async def delete_group(admin: Admin, group_id: int) -> None:
    """Delete the company's target group; its members stay, only the shared caps go."""
    await remove(admin, t.TargetGroup, group_id, "target group")
