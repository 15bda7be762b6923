"""Webhooks (pixels) sent when a campaign's events happen, and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update

from callbid.adapters.storage import tables as t
from callbid.domain.errors import InvalidField, NotFound
from callbid.domain.pixels import DEFAULT_CONTENT_TYPE, PixelEvent
from callbid.ids import new_id
from callbid.service.admin.common import (
    apply,
    check_outbound,
    check_ref,
    commit,
    owned,
    page,
    remove,
    save,
)
from callbid.service.admin.context import Admin
from callbid.service.admin.pixel_schemas import WebhookCreate, WebhookUpdate, check_body

DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery with every attempt made at it, oldest first."""

    row: t.WebhookDelivery
    attempts: list[t.WebhookAttempt]


async def create_webhook(admin: Admin, body: WebhookCreate) -> t.Webhook:
    """A new pixel of one of the company's campaigns. NotFound for another's campaign;
    InvalidField for a URL the outbound guard refuses."""
    await check_ref(admin, t.Campaign, body.campaign_id, "campaign_id")
    await check_outbound(admin.runtime.outbound, ("url",), body.url)
    row = t.Webhook(company_id=admin.company_id, **body.model_dump(mode="json"))
    admin.session.add(row)
    await save(admin)
    return row


async def list_webhooks(
    admin: Admin,
    limit: int,
    offset: int,
    campaign_id: int | None = None,
    event: PixelEvent | None = None,
) -> Sequence[t.Webhook]:
    """One page of the company's pixels (only `campaign_id`'s, `event`'s when given)."""
    where = [] if campaign_id is None else [t.Webhook.campaign_id == campaign_id]
    if event is not None:
        where.append(t.Webhook.event == event)
    return await page(admin, t.Webhook, limit, offset, *where)


async def read_webhook(admin: Admin, webhook_id: int) -> t.Webhook:
    """The company's pixel; NotFound else."""
    return await owned(admin, t.Webhook, webhook_id, "webhook")


async def update_webhook(admin: Admin, webhook_id: int, body: WebhookUpdate) -> t.Webhook:
    """The pixel with the fields sent changed; the same refusals as `create_webhook`, and
    InvalidField for a body that no longer fits its content type."""
    row = await owned(admin, t.Webhook, webhook_id, "webhook")
    if body.sent("campaign_id"):
        await check_ref(admin, t.Campaign, body.campaign_id, "campaign_id")
    if body.sent("url"):
        await check_outbound(admin.runtime.outbound, ("url",), body.url)
    content_type = body.content_type if body.sent("content_type") else row.content_type
    template = body.body if body.sent("body") else row.body
    try:
        check_body(template, content_type or DEFAULT_CONTENT_TYPE)
    except ValueError as exc:
        raise InvalidField(("body",), str(exc)) from None
    apply(row, body.changes())
    await save(admin)
    return row


async def delete_webhook(admin: Admin, webhook_id: int) -> None:
    """Delete the company's pixel; its pending deliveries are given up (marked failed), their
    history stays. NotFound else."""
    await admin.session.execute(
        update(t.WebhookDelivery)
        .where(
            t.WebhookDelivery.webhook_id == webhook_id,
            t.WebhookDelivery.company_id == admin.company_id,
            t.WebhookDelivery.status == "pending",
        )
        .values(status="failed", last_error="webhook deleted", lease_until=None)
    )
    await remove(admin, t.Webhook, webhook_id, "webhook")


async def list_deliveries(
    admin: Admin,
    webhook_id: int,
    limit: int,
    offset: int,
    status: DeliveryStatus | None = None,
) -> list[Delivery]:
    """One page of the pixel's deliveries (only those in `status` when given), newest first;
    NotFound for another company's pixel."""
    await owned(admin, t.Webhook, webhook_id, "webhook")
    query = select(t.WebhookDelivery).where(
        t.WebhookDelivery.webhook_id == webhook_id,
        t.WebhookDelivery.company_id == admin.company_id,
    )
    if status is not None:
        query = query.where(t.WebhookDelivery.status == status)
    query = query.order_by(t.WebhookDelivery.created_at.desc(), t.WebhookDelivery.id)
    rows = (await admin.session.scalars(query.limit(limit).offset(offset))).all()
    attempts = await attempts_of(admin, [r.id for r in rows])
    return [Delivery(r, attempts.get(r.id, [])) for r in rows]


async def resend_delivery(admin: Admin, webhook_id: int, delivery_id: str) -> t.WebhookDelivery:
    """The pixel's delivery queued again as a new delivery, exactly as it was rendered, due
    now (the dispatcher sends it at least once, with the usual retries); NotFound for another
    company's pixel or a delivery not of it."""
    await owned(admin, t.Webhook, webhook_id, "webhook")
    sent = await admin.session.get(t.WebhookDelivery, delivery_id)
    if sent is None or sent.webhook_id != webhook_id or sent.company_id != admin.company_id:
        raise NotFound("delivery not found")
    now = admin.runtime.clock()
    again = t.WebhookDelivery(
        id=new_id(),
        company_id=sent.company_id,
        webhook_id=webhook_id,
        event=sent.event,
        subject=sent.subject,
        method=sent.method,
        url=sent.url,
        headers=dict(sent.headers),
        body=sent.body,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    admin.session.add(again)
    await commit(admin.session)
    return again


async def attempts_of(
    admin: Admin, delivery_ids: Sequence[str]
) -> dict[str, list[t.WebhookAttempt]]:
    """Every attempt of each delivery, oldest first."""
    found: dict[str, list[t.WebhookAttempt]] = {}
    if not delivery_ids:
        return found
    rows = await admin.session.scalars(
        select(t.WebhookAttempt)
        .where(t.WebhookAttempt.delivery_id.in_(list(delivery_ids)))
        .order_by(t.WebhookAttempt.id)
    )
    for attempt in rows:
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found
