"""Campaigns, their routing pools and blocked caller lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select

from callbid.adapters.storage import tables as t
from callbid.domain.errors import InvalidField
from callbid.domain.model import ListKind
from callbid.service.admin.common import (
    PASSTHROUGH_URL,
    Linked,
    apply,
    check_outbound,
    check_refs,
    owned,
    page,
    remove,
    save,
)
from callbid.service.admin.context import Admin
from callbid.service.admin.passthrough import passthrough_url
from callbid.service.admin.schemas import CampaignCreate, CampaignUpdate

Campaign = Linked[t.Campaign]
"""A campaign with the target ids of its routing pool."""


async def pools_of(admin: Admin, campaign_ids: Iterable[int]) -> dict[int, list[int]]:
    """Target ids of each campaign's routing pool."""
    pools: dict[int, list[int]] = {}
    rows = await admin.session.execute(
        select(t.CampaignTarget.campaign_id, t.CampaignTarget.target_id)
        .where(t.CampaignTarget.campaign_id.in_(list(campaign_ids)))
        .order_by(t.CampaignTarget.target_id)
    )
    for campaign_id, target_id in rows:
        pools.setdefault(campaign_id, []).append(target_id)
    return pools


async def set_pool(admin: Admin, campaign_id: int, target_ids: Sequence[int]) -> None:
    session = admin.session
    await session.execute(
        delete(t.CampaignTarget).where(t.CampaignTarget.campaign_id == campaign_id)
    )
    session.add_all(t.CampaignTarget(campaign_id=campaign_id, target_id=i) for i in target_ids)


async def check_blocked_lists(admin: Admin, ids: Sequence[int]) -> None:
    """NotFound for another company's or a missing list; InvalidField for an allow list."""
    await check_refs(admin, t.CallerList.id, ids, "blocked_list_ids")
    allow = list(
        await admin.session.scalars(
            select(t.CallerList.id).where(
                t.CallerList.id.in_(ids), t.CallerList.kind != ListKind.BLOCK
            )
        )
    )
    if allow:
        message = f"caller lists {allow} are allow lists, not block lists"
        raise InvalidField(("blocked_list_ids",), message)


async def with_pool(admin: Admin, row: t.Campaign) -> Campaign:
    pools = await pools_of(admin, [row.id])
    return Linked(row, pools.get(row.id, []))


async def create_campaign(admin: Admin, body: CampaignCreate) -> Campaign:
    """A new campaign of the company. NotFound for another company's target or list;
    InvalidField for an allow list as blocked list or a refused passthrough URL."""
    await check_refs(admin, t.Target.id, body.target_ids, "target_ids")
    await check_blocked_lists(admin, body.blocked_list_ids)
    await check_outbound(admin.runtime.outbound, PASSTHROUGH_URL, passthrough_url(body.passthrough))
    fields = body.model_dump(mode="json", exclude={"target_ids"})
    row = t.Campaign(company_id=admin.company_id, **fields)
    admin.session.add(row)
    await admin.session.flush()
    await set_pool(admin, row.id, body.target_ids)
    await save(admin)
    return Linked(row, sorted(body.target_ids))


async def list_campaigns(admin: Admin, limit: int, offset: int) -> list[Campaign]:
    """One page of the company's campaigns, oldest first."""
    rows = await page(admin, t.Campaign, limit, offset)
    pools = await pools_of(admin, (r.id for r in rows))
    return [Linked(r, pools.get(r.id, [])) for r in rows]


async def read_campaign(admin: Admin, campaign_id: int) -> Campaign:
    """The company's campaign; NotFound else."""
    return await with_pool(admin, await owned(admin, t.Campaign, campaign_id, "campaign"))


async def update_campaign(admin: Admin, campaign_id: int, body: CampaignUpdate) -> Campaign:
    """The campaign with the fields sent changed (`target_ids` replaces its pool); the same
    refusals as `create_campaign`."""
    row = await owned(admin, t.Campaign, campaign_id, "campaign")
    if body.sent("target_ids"):
        await check_refs(admin, t.Target.id, body.target_ids, "target_ids")
        await set_pool(admin, row.id, body.target_ids)
    if body.sent("blocked_list_ids"):
        await check_blocked_lists(admin, body.blocked_list_ids)
    if body.sent("passthrough"):
        url = passthrough_url(body.passthrough)
        await check_outbound(admin.runtime.outbound, PASSTHROUGH_URL, url)
    apply(row, body.changes("target_ids"))
    await save(admin)
    return await with_pool(admin, row)


async def delete_campaign(admin: Admin, campaign_id: int) -> None:
    """Delete the company's campaign with its numbers, pools, criteria and RTB keys."""
    await remove(admin, t.Campaign, campaign_id, "campaign")
