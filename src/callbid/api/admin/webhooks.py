"""`/webhooks`: pixels sent when a campaign's events happen, and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage import tables as t
from callbid.api.admin.common import (
    DEFAULT_LIMIT,
    ERRORS,
    CampaignFilter,
    CompanyId,
    Limit,
    Offset,
    Session,
    apply,
    check_outbound,
    check_ref,
    columns,
    invalid,
    owned,
    page,
    remove,
    save,
)
from callbid.api.admin.pixel_schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    check_body,
)
from callbid.domain.pixels import DEFAULT_CONTENT_TYPE, PixelEvent

router = APIRouter(prefix="/webhooks", tags=["webhooks (pixels)"], responses=ERRORS)

EventFilter = Annotated[PixelEvent | None, Query(description="only pixels of this event")]
StatusFilter = Annotated[
    Literal["pending", "delivered", "failed"] | None,
    Query(description="only deliveries in this state"),
]


@router.post("", status_code=201, response_model=WebhookOut, summary="Create a pixel")
async def create_webhook(
    body: WebhookCreate, request: Request, session: Session, company_id: CompanyId
) -> WebhookOut:
    await check_ref(session, t.Campaign, body.campaign_id, company_id, "campaign_id")
    await check_outbound(request, ("url",), body.url)
    row = t.Webhook(company_id=company_id, **body.model_dump(mode="json"))
    session.add(row)
    await save(session, request, company_id)
    return WebhookOut.model_validate(row)


@router.get("", response_model=list[WebhookOut], summary="List pixels")
async def list_webhooks(
    session: Session,
    company_id: CompanyId,
    campaign_id: CampaignFilter = None,
    event: EventFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[WebhookOut]:
    where = [] if campaign_id is None else [t.Webhook.campaign_id == campaign_id]
    if event is not None:
        where.append(t.Webhook.event == event)
    rows = await page(session, t.Webhook, company_id, limit, offset, *where)
    return [WebhookOut.model_validate(r) for r in rows]


@router.get("/{webhook_id}", response_model=WebhookOut, summary="Read a pixel")
async def read_webhook(webhook_id: int, session: Session, company_id: CompanyId) -> WebhookOut:
    return WebhookOut.model_validate(
        await owned(session, t.Webhook, webhook_id, company_id, "webhook")
    )


@router.patch("/{webhook_id}", response_model=WebhookOut, summary="Change a pixel")
async def update_webhook(
    webhook_id: int,
    body: WebhookUpdate,
    request: Request,
    session: Session,
    company_id: CompanyId,
) -> WebhookOut:
    row = await owned(session, t.Webhook, webhook_id, company_id, "webhook")
    if body.sent("campaign_id"):
        await check_ref(session, t.Campaign, body.campaign_id, company_id, "campaign_id")
    if body.sent("url"):
        await check_outbound(request, ("url",), body.url)
    content_type = body.content_type if body.sent("content_type") else row.content_type
    try:
        check_body(
            body.body if body.sent("body") else row.body, content_type or DEFAULT_CONTENT_TYPE
        )
    except ValueError as exc:
        raise invalid("body", str(exc)) from None
    apply(row, body.changes())
    await save(session, request, company_id)
    return WebhookOut.model_validate(row)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Delete a pixel",
    description="Its deliveries still pending are given up (marked failed); their history stays.",
)
async def delete_webhook(
    webhook_id: int, request: Request, session: Session, company_id: CompanyId
) -> None:
    await session.execute(
        update(t.WebhookDelivery)
        .where(
            t.WebhookDelivery.webhook_id == webhook_id,
            t.WebhookDelivery.company_id == company_id,
            t.WebhookDelivery.status == "pending",
        )
        .values(status="failed", last_error="webhook deleted", lease_until=None)
    )
    await remove(session, request, t.Webhook, webhook_id, company_id, "webhook")


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="List a pixel's deliveries",
    description="Newest first, each with every attempt made at it.",
)
async def list_deliveries(
    webhook_id: int,
    session: Session,
    company_id: CompanyId,
    status: StatusFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[DeliveryOut]:
    await owned(session, t.Webhook, webhook_id, company_id, "webhook")
    query = select(t.WebhookDelivery).where(
        t.WebhookDelivery.webhook_id == webhook_id, t.WebhookDelivery.company_id == company_id
    )
    if status is not None:
        query = query.where(t.WebhookDelivery.status == status)
    query = query.order_by(t.WebhookDelivery.created_at.desc(), t.WebhookDelivery.id)
    rows = (await session.scalars(query.limit(limit).offset(offset))).all()
    attempts = await attempts_of(session, [r.id for r in rows])
    return [
        DeliveryOut.model_validate({**columns(r), "attempt_log": attempts.get(r.id, [])})
        for r in rows
    ]


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[str]
) -> dict[str, list[AttemptOut]]:
    """Every attempt of each delivery, oldest first."""
    found: dict[str, list[AttemptOut]] = {}
    if not delivery_ids:
        return found
    rows = await session.scalars(
        select(t.WebhookAttempt)
        .where(t.WebhookAttempt.delivery_id.in_(list(delivery_ids)))
        .order_by(t.WebhookAttempt.id)
    )
    for attempt in rows:
        found.setdefault(attempt.delivery_id, []).append(AttemptOut.model_validate(attempt))
    return found
