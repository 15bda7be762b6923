"""`/targets`: buyers, with hours, caps, filters and their target-group memberships."""

from __future__ import annotations

from fastapi import APIRouter

from callbid.api.admin.common import DEFAULT_LIMIT, ERRORS, AdminContext, Limit, Offset
from callbid.service.admin import targets
from callbid.service.admin.common import columns
from callbid.service.admin.schemas import TargetCreate, TargetOut, TargetUpdate

router = APIRouter(prefix="/targets", tags=["targets"], responses=ERRORS)


def target_out(found: targets.Target) -> TargetOut:
    return TargetOut.model_validate({**columns(found.row), "group_ids": found.ids})


@router.post("", status_code=201, response_model=TargetOut, summary="Create a target (buyer)")
async def create_target(body: TargetCreate, admin: AdminContext) -> TargetOut:
    return target_out(await targets.create_target(admin, body))


@router.get("", response_model=list[TargetOut], summary="List targets")
async def list_targets(
    admin: AdminContext, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[TargetOut]:
    return [target_out(found) for found in await targets.list_targets(admin, limit, offset)]


@router.get("/{target_id}", response_model=TargetOut, summary="Read a target")
async def read_target(target_id: int, admin: AdminContext) -> TargetOut:
    return target_out(await targets.read_target(admin, target_id))


@router.patch("/{target_id}", response_model=TargetOut, summary="Change a target")
async def update_target(target_id: int, body: TargetUpdate, admin: AdminContext) -> TargetOut:
    return target_out(await targets.update_target(admin, target_id, body))


@router.delete(
    "/{target_id}",
    status_code=204,
    summary="Delete a target",
    description="Also removes it from every campaign's routing pool and every target group.",
)
async def delete_target(target_id: int, admin: AdminContext) -> None:
    await targets.delete_target(admin, target_id)
