"""`/webhooks`: pixels sent when a campaign's events happen, and their deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from callbid.api.admin.common import (
    DEFAULT_LIMIT,
    ERRORS,
    AdminContext,
    CampaignFilter,
    Limit,
    Offset,
)
from callbid.domain.pixels import PixelEvent
from callbid.service.admin import webhooks
from callbid.service.admin.common import columns
from callbid.service.admin.pixel_schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks (pixels)"], responses=ERRORS)

EventFilter = Annotated[PixelEvent | None, Query(description="only pixels of this event")]
StatusFilter = Annotated[
    webhooks.DeliveryStatus | None, Query(description="only deliveries in this state")
]


@router.post("", status_code=201, response_model=WebhookOut, summary="Create a pixel")
async def create_webhook(body: WebhookCreate, admin: AdminContext) -> WebhookOut:
    return WebhookOut.model_validate(await webhooks.create_webhook(admin, body))


@router.get("", response_model=list[WebhookOut], summary="List pixels")
async def list_webhooks(
    admin: AdminContext,
    campaign_id: CampaignFilter = None,
    event: EventFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[WebhookOut]:
    rows = await webhooks.list_webhooks(admin, limit, offset, campaign_id, event)
    return [WebhookOut.model_validate(r) for r in rows]


@router.get("/{webhook_id}", response_model=WebhookOut, summary="Read a pixel")
async def read_webhook(webhook_id: int, admin: AdminContext) -> WebhookOut:
    return WebhookOut.model_validate(await webhooks.read_webhook(admin, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut, summary="Change a pixel")
async def update_webhook(webhook_id: int, body: WebhookUpdate, admin: AdminContext) -> WebhookOut:
    return WebhookOut.model_validate(await webhooks.update_webhook(admin, webhook_id, body))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Delete a pixel",
    description="Its deliveries still pending are given up (marked failed); their history stays.",
)
async def delete_webhook(webhook_id: int, admin: AdminContext) -> None:
    await webhooks.delete_webhook(admin, webhook_id)


def delivery_out(found: webhooks.Delivery) -> DeliveryOut:
    attempts = [AttemptOut.model_validate(a) for a in found.attempts]
    return DeliveryOut.model_validate({**columns(found.row), "attempt_log": attempts})


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="List a pixel's deliveries",
    description="Newest first, each with every attempt made at it.",
)
async def list_deliveries(
    webhook_id: int,
    admin: AdminContext,
    status: StatusFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[DeliveryOut]:
    found = await webhooks.list_deliveries(admin, webhook_id, limit, offset, status)
    return [delivery_out(d) for d in found]


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/resend",
    status_code=201,
    response_model=DeliveryOut,
    summary="Send a delivery again",
    description="Queues the delivery again, exactly as it was rendered, as a new delivery due "
    "now; it is sent at least once with the usual retries.",
)
async def resend_delivery(webhook_id: int, delivery_id: str, admin: AdminContext) -> DeliveryOut:
    again = await webhooks.resend_delivery(admin, webhook_id, delivery_id)
    return delivery_out(webhooks.Delivery(again, []))
