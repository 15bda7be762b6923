"""RTB keys: the keys publishers ping a campaign with, and how each key behaves."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from callbid.adapters.storage import tables as t
from callbid.domain.errors import InvalidField
from callbid.service.admin.common import apply, check_ref, columns, owned, page, remove, save
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import RtbKeyCreate, RtbKeyUpdate


async def check_inbound(admin: Admin, number: str | None, campaign_id: int) -> None:
    """InvalidField unless `number` is None or a tracking number of the campaign."""
    if number is None:
        return
    found = await admin.session.scalar(
        select(t.TrackingNumber.id).where(
            t.TrackingNumber.number == number,
            t.TrackingNumber.campaign_id == campaign_id,
            t.TrackingNumber.company_id == admin.company_id,
        )
    )
    if found is None:
        message = f"{number} is not a tracking number of campaign {campaign_id}"
        raise InvalidField(("inbound_number",), message)


async def create_key(admin: Admin, body: RtbKeyCreate) -> t.RtbKey:
    """A new key (a uuid4 the server generates) of one of the company's campaigns. NotFound
    for another's campaign; InvalidField for an inbound number not of the campaign."""
    await check_ref(admin, t.Campaign, body.campaign_id, "campaign_id")
    await check_inbound(admin, body.inbound_number, body.campaign_id)
    fields = body.model_dump(mode="json")
    row = t.RtbKey(key=str(uuid.uuid4()), company_id=admin.company_id, **fields)
    admin.session.add(row)
    await save(admin)
    return row


async def list_keys(
    admin: Admin, limit: int, offset: int, campaign_id: int | None = None
) -> Sequence[t.RtbKey]:
    """One page of the company's keys (only `campaign_id`'s when given), oldest first."""
    where = [] if campaign_id is None else [t.RtbKey.campaign_id == campaign_id]
    return await page(admin, t.RtbKey, limit, offset, *where)


async def read_key(admin: Admin, key: str) -> t.RtbKey:
    """The company's key; NotFound else."""
    return await owned(admin, t.RtbKey, key, "RTB key")


async def update_key(admin: Admin, key: str, body: RtbKeyUpdate) -> t.RtbKey:
    """The key with the fields sent changed, effective on the next ping; the same refusals
    as `create_key`, checked against the campaign it ends up on."""
    row = await owned(admin, t.RtbKey, key, "RTB key")
    campaign_id = body.campaign_id if body.sent("campaign_id") else row.campaign_id
    inbound = body.inbound_number if body.sent("inbound_number") else row.inbound_number
    if body.sent("campaign_id"):
        await check_ref(admin, t.Campaign, campaign_id, "campaign_id")
    if body.sent("campaign_id") or body.sent("inbound_number"):
        await check_inbound(admin, inbound, campaign_id)
    apply(row, body.changes())
    await save(admin)
    return row


async def rotate_key(admin: Admin, key: str) -> t.RtbKey:
    """The key replaced by a new one with the same settings: the old key stops working on the
    next ping (its past requests keep naming it); NotFound for another company's key."""
    row = await owned(admin, t.RtbKey, key, "RTB key")
    settings = {name: value for name, value in columns(row).items() if name != "key"}
    fresh = t.RtbKey(key=str(uuid.uuid4()), **settings)
    await admin.session.delete(row)
    await admin.session.flush()
    admin.session.add(fresh)
    await save(admin)
    return fresh


async def delete_key(admin: Admin, key: str) -> None:
    """Delete the company's key; NotFound else."""
    await remove(admin, t.RtbKey, key, "RTB key")
