"""Conversion criteria: when a call converts and what it pays the publisher and the owner."""

from __future__ import annotations

from collections.abc import Sequence

from callbid.adapters.storage import tables as t
from callbid.domain.errors import InvalidField
from callbid.domain.model import PayoutKind
from callbid.service.admin.common import apply, check_ref, owned, page, remove, save
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import CriterionCreate, CriterionUpdate, check_payout

WHAT = "conversion criterion"


async def create_criterion(admin: Admin, body: CriterionCreate) -> t.ConversionCriterion:
    """A new criterion of one of the company's campaigns; NotFound for another's campaign."""
    await check_ref(admin, t.Campaign, body.campaign_id, "campaign_id")
    row = t.ConversionCriterion(company_id=admin.company_id, **body.model_dump(mode="json"))
    admin.session.add(row)
    await save(admin)
    return row


async def list_criteria(
    admin: Admin, limit: int, offset: int, campaign_id: int | None = None
) -> Sequence[t.ConversionCriterion]:
    """One page of the company's criteria (only `campaign_id`'s when given), oldest first."""
    where = [] if campaign_id is None else [t.ConversionCriterion.campaign_id == campaign_id]
    return await page(admin, t.ConversionCriterion, limit, offset, *where)


async def read_criterion(admin: Admin, criterion_id: int) -> t.ConversionCriterion:
    """The company's criterion; NotFound else."""
    return await owned(admin, t.ConversionCriterion, criterion_id, WHAT)


async def update_criterion(
    admin: Admin, criterion_id: int, body: CriterionUpdate
) -> t.ConversionCriterion:
    """The criterion with the fields sent changed; InvalidField when the payout no longer
    fits its kind (a revshare above 100 %)."""
    row = await owned(admin, t.ConversionCriterion, criterion_id, WHAT)
    if body.sent("campaign_id"):
        await check_ref(admin, t.Campaign, body.campaign_id, "campaign_id")
    kind = body.payout_kind if body.sent("payout_kind") else PayoutKind(row.payout_kind)
    payout = body.payout if body.sent("payout") else row.payout
    try:
        check_payout(kind, payout)
    except ValueError as exc:
        raise InvalidField(("payout",), str(exc)) from None
    apply(row, body.changes())
    await save(admin)
    return row


async def delete_criterion(admin: Admin, criterion_id: int) -> None:
    """Delete the company's criterion; NotFound else."""
    await remove(admin, t.ConversionCriterion, criterion_id, WHAT)
