"""`/target-groups`: caps shared by several targets (a call counts on each group it is in)."""

from __future__ import annotations

from fastapi import APIRouter

from callbid.api.admin.common import DEFAULT_LIMIT, ERRORS, AdminContext, Limit, Offset
from callbid.service.admin import groups
from callbid.service.admin.common import columns
from callbid.service.admin.schemas import TargetGroupCreate, TargetGroupOut, TargetGroupUpdate

router = APIRouter(prefix="/target-groups", tags=["target groups"], responses=ERRORS)


def group_out(found: groups.Group) -> TargetGroupOut:
    return TargetGroupOut.model_validate({**columns(found.row), "target_ids": found.ids})


@router.post("", status_code=201, response_model=TargetGroupOut, summary="Create a target group")
async def create_group(body: TargetGroupCreate, admin: AdminContext) -> TargetGroupOut:
    return group_out(await groups.create_group(admin, body))


@router.get("", response_model=list[TargetGroupOut], summary="List target groups")
async def list_groups(
    admin: AdminContext, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[TargetGroupOut]:
    return [group_out(found) for found in await groups.list_groups(admin, limit, offset)]


@router.get("/{group_id}", response_model=TargetGroupOut, summary="Read a target group")
async def read_group(group_id: int, admin: AdminContext) -> TargetGroupOut:
    return group_out(await groups.read_group(admin, group_id))


@router.patch("/{group_id}", response_model=TargetGroupOut, summary="Change a target group")
async def update_group(
    group_id: int, body: TargetGroupUpdate, admin: AdminContext
) -> TargetGroupOut:
    return group_out(await groups.update_group(admin, group_id, body))


@router.delete(
    "/{group_id}",
    status_code=204,
    summary="Delete a target group",
    description="Its members stay; only the shared caps go.",
)
async def delete_group(group_id: int, admin: AdminContext) -> None:
    await groups.delete_group(admin, group_id)
