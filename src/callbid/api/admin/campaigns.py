"""`/campaigns`: campaigns, their routing pools and blocked caller lists."""

from __future__ import annotations

from fastapi import APIRouter

from callbid.api.admin.common import DEFAULT_LIMIT, ERRORS, AdminContext, Limit, Offset
from callbid.service.admin import campaigns
from callbid.service.admin.common import columns
from callbid.service.admin.schemas import CampaignCreate, CampaignOut, CampaignUpdate

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=ERRORS)


def campaign_out(found: campaigns.Campaign) -> CampaignOut:
    return CampaignOut.model_validate({**columns(found.row), "target_ids": found.ids})


@router.post("", status_code=201, response_model=CampaignOut, summary="Create a campaign")
async def create_campaign(body: CampaignCreate, admin: AdminContext) -> CampaignOut:
    return campaign_out(await campaigns.create_campaign(admin, body))


@router.get("", response_model=list[CampaignOut], summary="List campaigns")
async def list_campaigns(
    admin: AdminContext, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[CampaignOut]:
    return [campaign_out(found) for found in await campaigns.list_campaigns(admin, limit, offset)]


@router.get("/{campaign_id}", response_model=CampaignOut, summary="Read a campaign")
async def read_campaign(campaign_id: int, admin: AdminContext) -> CampaignOut:
    return campaign_out(await campaigns.read_campaign(admin, campaign_id))


@router.patch("/{campaign_id}", response_model=CampaignOut, summary="Change a campaign")
async def update_campaign(
    campaign_id: int, body: CampaignUpdate, admin: AdminContext
) -> CampaignOut:
    return campaign_out(await campaigns.update_campaign(admin, campaign_id, body))


@router.delete(
    "/{campaign_id}",
    status_code=204,
    summary="Delete a campaign",
    description="Also deletes its tracking numbers, number pools, conversion criteria and RTB "
    "keys.",
)
async def delete_campaign(campaign_id: int, admin: AdminContext) -> None:
    await campaigns.delete_campaign(admin, campaign_id)
