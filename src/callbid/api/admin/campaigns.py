"""`/campaigns`: campaigns, their routing pools and blocked caller lists."""

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
    check_refs,
    columns,
    invalid,
    owned,
    page,
    remove,
    save,
)
from callbid.api.admin.passthrough import passthrough_url
from callbid.api.admin.schemas import CampaignCreate, CampaignOut, CampaignUpdate
from callbid.domain.model import ListKind

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=ERRORS)


async def pools_of(session: AsyncSession, campaign_ids: Iterable[int]) -> dict[int, list[int]]:
    """Target ids of each campaign's routing pool."""
    pools: dict[int, list[int]] = {}
    rows = await session.execute(
        select(t.CampaignTarget.campaign_id, t.CampaignTarget.target_id)
        .where(t.CampaignTarget.campaign_id.in_(list(campaign_ids)))
        .order_by(t.CampaignTarget.target_id)
    )
    for campaign_id, target_id in rows:
        pools.setdefault(campaign_id, []).append(target_id)
    return pools


async def set_pool(session: AsyncSession, campaign_id: int, target_ids: Sequence[int]) -> None:
    await session.execute(
        delete(t.CampaignTarget).where(t.CampaignTarget.campaign_id == campaign_id)
    )
    session.add_all(t.CampaignTarget(campaign_id=campaign_id, target_id=i) for i in target_ids)


async def check_blocked_lists(session: AsyncSession, ids: Sequence[int], company_id: int) -> None:
    """NotFound for another company's or a missing list; 422 for an allow list."""
    await check_refs(session, t.CallerList.id, ids, company_id, "blocked_list_ids")
    allow = list(
        await session.scalars(
            select(t.CallerList.id).where(
                t.CallerList.id.in_(ids), t.CallerList.kind != ListKind.BLOCK
            )
        )
    )
    if allow:
        raise invalid("blocked_list_ids", f"caller lists {allow} are allow lists, not block lists")


def campaign_out(row: t.Campaign, target_ids: list[int]) -> CampaignOut:
    return CampaignOut.model_validate({**columns(row), "target_ids": target_ids})


@router.post("", status_code=201, response_model=CampaignOut, summary="Create a campaign")
async def create_campaign(
    body: CampaignCreate, request: Request, session: Session, company_id: CompanyId
) -> CampaignOut:
    await check_refs(session, t.Target.id, body.target_ids, company_id, "target_ids")
    await check_blocked_lists(session, body.blocked_list_ids, company_id)
    await check_outbound(request, PASSTHROUGH_URL, passthrough_url(body.passthrough))
    row = t.Campaign(company_id=company_id, **body.model_dump(mode="json", exclude={"target_ids"}))
    session.add(row)
    await session.flush()
    await set_pool(session, row.id, body.target_ids)
    await save(session, request, company_id)
    return campaign_out(row, sorted(body.target_ids))


@router.get("", response_model=list[CampaignOut], summary="List campaigns")
async def list_campaigns(
    session: Session, company_id: CompanyId, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[CampaignOut]:
    rows = await page(session, t.Campaign, company_id, limit, offset)
    pools = await pools_of(session, (r.id for r in rows))
    return [campaign_out(r, pools.get(r.id, [])) for r in rows]


@router.get("/{campaign_id}", response_model=CampaignOut, summary="Read a campaign")
async def read_campaign(campaign_id: int, session: Session, company_id: CompanyId) -> CampaignOut:
    row = await owned(session, t.Campaign, campaign_id, company_id, "campaign")
    pools = await pools_of(session, [row.id])
    return campaign_out(row, pools.get(row.id, []))


@router.patch("/{campaign_id}", response_model=CampaignOut, summary="Change a campaign")
async def update_campaign(
    campaign_id: int,
    body: CampaignUpdate,
    request: Request,
    session: Session,
    company_id: CompanyId,
) -> CampaignOut:
    row = await owned(session, t.Campaign, campaign_id, company_id, "campaign")
    if body.sent("target_ids"):
        await check_refs(session, t.Target.id, body.target_ids, company_id, "target_ids")
        await set_pool(session, row.id, body.target_ids)
    if body.sent("blocked_list_ids"):
        await check_blocked_lists(session, body.blocked_list_ids, company_id)
    if body.sent("passthrough"):
        await check_outbound(request, PASSTHROUGH_URL, passthrough_url(body.passthrough))
    apply(row, body.changes("target_ids"))
    await save(session, request, company_id)
    pools = await pools_of(session, [row.id])
    return campaign_out(row, pools.get(row.id, []))


@router.delete(
    "/{campaign_id}",
    status_code=204,
    summary="Delete a campaign",
    description="Also deletes its tracking numbers, number pools, conversion criteria and RTB "
    "keys.",
)
async def delete_campaign(
    campaign_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    await remove(session, request, t.Campaign, campaign_id, company_id, "campaign")
