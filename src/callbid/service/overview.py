"""A campaign's overview for its owner: its configuration, each target's live state (open now,
calls in flight and period counts against their caps, its buyer API's breaker) and the
warnings of `domain.checkup`. Reads only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage import tables as t
from callbid.adapters.storage.config_repo import key_from, load_campaign
from callbid.domain.checkup import Warning, campaign_warnings, failing_buyers
from callbid.domain.errors import NotFound
from callbid.domain.hours import is_open
from callbid.domain.model import Campaign, Target
from callbid.domain.reserve import CapSubject, SubjectUsage, namespace, target_subjects
from callbid.metrics import buyer_label
from callbid.runtime import Runtime

#: How many of the campaign's latest requests are read for its buyers' recent outcomes.
RECENT_REQUESTS = 100


@dataclass(frozen=True, slots=True)
class CapUse:
    """One cap of a target: its name, the limit, and what is used of it now."""

    name: str
    used: int
    limit: int

    @property
    def full(self) -> bool:
        return self.used >= self.limit


@dataclass(frozen=True, slots=True)
class TargetState:
    target: Target
    open_now: bool
    caps: tuple[CapUse, ...]
    breaker: str | None
    failing: int = 0


@dataclass(frozen=True, slots=True)
class Overview:
    campaign: Campaign
    row: t.Campaign
    numbers: Sequence[t.TrackingNumber]
    pools: Sequence[t.NumberPool]
    keys: Sequence[t.RtbKey]
    criteria: Sequence[t.ConversionCriterion]
    webhooks: Sequence[t.Webhook]
    publishers: Sequence[t.Publisher]
    targets: tuple[TargetState, ...]
    warnings: list[Warning] = field(default_factory=list)


async def campaign_overview(runtime: Runtime, company_id: int, campaign_id: int) -> Overview:
    """The overview of the company's campaign; NotFound for another company's or none."""
    now = runtime.clock()
    async with runtime.sessions() as session:
        row = await session.get(t.Campaign, campaign_id)
        campaign = await load_campaign(session, campaign_id) if row is not None else None
        if row is None or campaign is None or row.company_id != company_id:
            raise NotFound("campaign not found")
        parts = await _rows(session, campaign_id)
        parts["publishers"] = (
            await session.scalars(
                select(t.Publisher)
                .where(t.Publisher.company_id == company_id)
                .order_by(t.Publisher.publisher_id)
            )
        ).all()
        logs = await _recent_logs(session, company_id, campaign_id)
    failing = failing_buyers(logs)
    states = await _target_states(runtime, campaign, now, failing)
    keys = [key_from(key) for key in parts["keys"]]
    return Overview(
        campaign=campaign,
        row=row,
        targets=states,
        warnings=campaign_warnings(campaign, keys, now, failing),
        **parts,
    )


async def _rows(session: AsyncSession, campaign_id: int) -> dict[str, Any]:
    async def of(model: Any, order: Any) -> Sequence[Any]:
        found = await session.scalars(
            select(model).where(model.campaign_id == campaign_id).order_by(order)
        )
        return found.all()

    return {
        "numbers": await of(t.TrackingNumber, t.TrackingNumber.number),
        "pools": await of(t.NumberPool, t.NumberPool.id),
        "keys": await of(t.RtbKey, t.RtbKey.name),
        "criteria": await of(t.ConversionCriterion, t.ConversionCriterion.position),
        "webhooks": await of(t.Webhook, t.Webhook.id),
    }


async def _recent_logs(
    session: AsyncSession, company_id: int, campaign_id: int
) -> list[list[dict[str, Any]]]:
    logs = await session.scalars(
        select(t.Reservation.decision_log)
        .where(t.Reservation.company_id == company_id, t.Reservation.campaign_id == campaign_id)
        .order_by(t.Reservation.created_at.desc(), t.Reservation.uuid.desc())
        .limit(RECENT_REQUESTS)
    )
    return [list(log) for log in logs]


async def _target_states(
    runtime: Runtime, campaign: Campaign, now: datetime, failing: dict[int | None, int]
) -> tuple[TargetState, ...]:
    subjects = [target_subjects(target, campaign.groups, now)[0] for target in campaign.targets]
    usages = await runtime.store.usage(namespace(campaign.company_id), subjects, now.timestamp())
    buyers = runtime.buyers
    return tuple(
        TargetState(
            target=target,
            open_now=is_open(target.schedule, now),
            caps=_cap_uses(subject, usage),
            breaker=(
                buyers.breaker_state(buyer_label(target.id, campaign.id))
                if buyers is not None and target.passthrough is not None
                else None
            ),
            failing=failing.get(target.id, 0),
        )
        for target, subject, usage in zip(campaign.targets, subjects, usages, strict=True)
    )


PERIOD_NAMES = {
    "hourly": "this hour",
    "daily": "today",
    "monthly": "this month",
    "lifetime": "in all",
}


def _cap_uses(subject: CapSubject, usage: SubjectUsage) -> tuple[CapUse, ...]:
    """The subject's caps that are set, each with what is used of it now."""
    uses = []
    if subject.concurrency is not None:
        uses.append(CapUse("concurrent calls", usage.in_use, subject.concurrency))
    for cap in subject.periods:
        uses.append(
            CapUse(PERIOD_NAMES.get(cap.name, cap.name), usage.used(cap.counter), cap.limit)
        )
    return tuple(uses)
