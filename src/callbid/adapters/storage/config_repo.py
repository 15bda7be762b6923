"""Loads a campaign's configuration into immutable domain objects (one read per cache miss).

The JSON columns are stored in the shapes the admin API validates:
hours `[{"days": [0-6], "open": "HH:MM", "close": "HH:MM"}]`,
filters `[{"tag": str, "op": FilterOp, "values": [str]}]`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.buyers.templates import passthrough_from
from callbid.adapters.storage import tables as t
from callbid.domain import model as m
from callbid.domain.buyers import Passthrough
from callbid.domain.hours import block_from
from callbid.domain.pixels import DEFAULT_CONTENT_TYPE, PixelEvent, Webhook

log = logging.getLogger(__name__)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The zone by name; UTC for a name that is not a zone (the admin API refuses those, so
    only rows written around it can hold one, and a ping must not fail on them)."""
    try:
        return ZoneInfo(name)
    except (ValueError, OSError):
        log.warning("unknown time zone %r read as UTC", name)
        return ZoneInfo("UTC")


def schedule_from(tz: str, hours: Iterable[Mapping[str, Any]]) -> m.Schedule:
    blocks = tuple(
        block_from(int(day), str(h["open"]), str(h["close"])) for h in hours for day in h["days"]
    )
    return m.Schedule(zone(tz), blocks)


def rules_from(filters: Iterable[Mapping[str, Any]]) -> tuple[m.TagRule, ...]:
    return tuple(
        m.TagRule(
            str(f["tag"]).lower(), m.FilterOp(f["op"]), tuple(str(v) for v in f.get("values", ()))
        )
        for f in filters
    )


def caps_from(row: t.CapsMixin) -> m.Caps:
    return m.Caps(
        row.concurrency_cap, row.hourly_cap, row.daily_cap, row.monthly_cap, row.lifetime_cap
    )


async def load_key(session: AsyncSession, key: str) -> tuple[m.RtbKey, m.Campaign] | None:
    """The RTB key and its campaign, or None when the key does not exist."""
    row = await session.get(t.RtbKey, key)
    if row is None:
        return None
    campaign = await load_campaign(session, row.campaign_id)
    if campaign is None or campaign.company_id != row.company_id:
        return None
    return key_from(row), campaign


def key_from(row: t.RtbKey) -> m.RtbKey:
    return m.RtbKey(
        key=row.key,
        company_id=row.company_id,
        campaign_id=row.campaign_id,
        ttl_seconds=row.ttl_seconds,
        timeout_seconds=row.timeout_seconds,
        paused=row.paused,
        inbound_number=row.inbound_number,
        allow_no_caller=row.allow_no_caller,
        count_on_reserved=row.count_on_reserved,
        strict_target=row.strict_target,
        shield_scope=m.ShieldScope(row.shield_scope),
        rate_per_second=row.rate_per_second,
        rate_burst=row.rate_burst,
    )


async def load_campaign(session: AsyncSession, campaign_id: int) -> m.Campaign | None:
    row = await session.get(t.Campaign, campaign_id)
    if row is None:
        return None
    numbers = (
        await session.scalars(
            select(t.TrackingNumber)
            .where(t.TrackingNumber.campaign_id == campaign_id)
            .order_by(t.TrackingNumber.id)
        )
    ).all()
    target_rows = (
        await session.scalars(
            select(t.Target)
            .join(t.CampaignTarget, t.CampaignTarget.target_id == t.Target.id)
            .where(t.CampaignTarget.campaign_id == campaign_id)
            .order_by(t.Target.priority, t.Target.id)
        )
    ).all()
    target_ids = [tr.id for tr in target_rows]
    members = (
        await session.execute(
            select(t.TargetGroupMember.target_id, t.TargetGroupMember.group_id).where(
                t.TargetGroupMember.target_id.in_(target_ids)
            )
        )
    ).all()
    group_ids = {g for _, g in members}
    groups = (
        await session.scalars(select(t.TargetGroup).where(t.TargetGroup.id.in_(group_ids)))
    ).all()
    list_ids = {tr.caller_list_id for tr in target_rows if tr.caller_list_id} | set(
        row.blocked_list_ids or []
    )
    lists = {
        cl.id: cl
        for cl in (
            await session.scalars(select(t.CallerList).where(t.CallerList.id.in_(list_ids)))
        ).all()
    }
    criteria = (
        await session.scalars(
            select(t.ConversionCriterion)
            .where(t.ConversionCriterion.campaign_id == campaign_id)
            .order_by(t.ConversionCriterion.position, t.ConversionCriterion.id)
        )
    ).all()
    publishers = (
        await session.scalars(select(t.Publisher).where(t.Publisher.company_id == row.company_id))
    ).all()
    memberships: dict[int, list[int]] = {}
    for target_id, group_id in members:
        memberships.setdefault(target_id, []).append(group_id)
    blocked = frozenset(
        n
        for list_id in row.blocked_list_ids or []
        if list_id in lists
        for n in lists[list_id].numbers
    )
    gate, usable = stored_passthrough(row.passthrough, f"campaign {row.id}")
    webhooks = await load_webhooks(session, [campaign_id])
    return m.Campaign(
        id=row.id,
        company_id=row.company_id,
        name=row.name,
        strategy=m.RoutingStrategy(row.routing_strategy),
        numbers=tuple(n.number for n in numbers if n.pool_id is None),
        pool_numbers=tuple(n.number for n in numbers if n.pool_id is not None),
        targets=tuple(
            target_from(tr, lists, sorted(memberships.get(tr.id, []))) for tr in target_rows
        )
        if usable
        else (),
        groups={g.id: m.TargetGroup(g.id, g.name, caps_from(g), zone(g.timezone)) for g in groups},
        criteria=tuple(criterion_from(c) for c in criteria),
        publishers={p.publisher_id: publisher_from(p) for p in publishers},
        blocked_callers=blocked,
        passthrough=gate,
        webhooks=webhooks.get(campaign_id, ()),
    )


def stored_passthrough(
    config: Mapping[str, Any] | None, owner: str
) -> tuple[Passthrough | None, bool]:
    """(the passthrough, whether it is usable). The admin API validated it; a row written
    around it that no longer validates leaves its owner unusable rather than unasked."""
    if config is None:
        return None, True
    try:
        return passthrough_from(config), True
    except ValueError as exc:
        log.warning("%s: stored passthrough refused (%s); it takes no pings", owner, exc)
        return None, False


def target_from(row: t.Target, lists: Mapping[int, t.CallerList], group_ids: list[int]) -> m.Target:
    caller_list = None
    if row.caller_list_id is not None and row.caller_list_id in lists:
        listed = lists[row.caller_list_id]
        caller_list = m.CallerList(m.ListKind(listed.kind), frozenset(listed.numbers))
    passthrough, usable = stored_passthrough(row.passthrough, f"target {row.id}")
    return m.Target(
        id=row.id,
        name=row.name,
        destination=row.destination,
        priority=row.priority,
        weight=row.weight,
        paused=row.paused or not usable,
        schedule=schedule_from(row.timezone, row.hours),
        caps=caps_from(row),
        cap_trigger=m.CapTrigger(row.cap_trigger),
        rules=rules_from(row.filters),
        caller_list=caller_list,
        ring_timeout=row.ring_timeout,
        dedupe_seconds=row.dedupe_seconds,
        group_ids=tuple(group_ids),
        passthrough=passthrough,
        bid=row.bid,
    )


def criterion_from(row: t.ConversionCriterion) -> m.ConversionCriterion:
    return m.ConversionCriterion(
        id=row.id,
        name=row.name,
        publisher_id=row.publisher_id,
        payout_kind=m.PayoutKind(row.payout_kind),
        payout=row.payout,
        revenue=row.revenue,
        buffer_seconds=row.buffer_seconds,
        rules=rules_from(row.conditions),
        dedupe_seconds=row.dedupe_seconds,
    )


def publisher_from(row: t.Publisher) -> m.Publisher:
    return m.Publisher(
        publisher_id=row.publisher_id,
        name=row.name,
        blocked=row.blocked,
        caps=caps_from(row),
        schedule=schedule_from(row.timezone, row.hours),
    )


async def load_webhooks(
    session: AsyncSession, campaign_ids: Collection[int], event: PixelEvent | None = None
) -> dict[int, tuple[Webhook, ...]]:
    """The enabled pixels of each campaign (of `event` only, when given), oldest first;
    campaigns without any are left out."""
    query = select(t.Webhook).where(
        t.Webhook.campaign_id.in_(list(campaign_ids)), t.Webhook.enabled.is_(True)
    )
    if event is not None:
        query = query.where(t.Webhook.event == event)
    found: dict[int, list[Webhook]] = {}
    for row in await session.scalars(query.order_by(t.Webhook.id)):
        webhook = webhook_from(row)
        if webhook is not None:
            found.setdefault(row.campaign_id, []).append(webhook)
    return {campaign_id: tuple(hooks) for campaign_id, hooks in found.items()}


def webhook_from(row: t.Webhook) -> Webhook | None:
    """The pixel a row describes; None (logged) for a row written around the admin API that
    no longer reads: a campaign must keep taking pings."""
    try:
        return Webhook(
            id=row.id,
            event=PixelEvent(row.event),
            url=row.url,
            method=row.method.upper(),
            headers=tuple((str(k), str(v)) for k, v in (row.headers or {}).items()),
            body=row.body,
            content_type=row.content_type or DEFAULT_CONTENT_TYPE,
            conditions=rules_from(row.conditions or ()),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("webhook %s: stored configuration refused (%r); it does not fire", row.id, exc)
        return None


async def load_line(
    session: AsyncSession, number: str
) -> tuple[m.Campaign, str | None, dict[str, m.RtbKey]] | None:
    """The campaign a tracking number belongs to, its company's carrier auth token and the
    campaign's RTB keys; None for a number no campaign has."""
    row = (
        await session.scalars(select(t.TrackingNumber).where(t.TrackingNumber.number == number))
    ).first()
    if row is None:
        return None
    campaign = await load_campaign(session, row.campaign_id)
    company = await session.get(t.Company, row.company_id)
    if campaign is None or company is None:
        return None
    keys = (
        await session.scalars(select(t.RtbKey).where(t.RtbKey.campaign_id == row.campaign_id))
    ).all()
    return campaign, company.carrier_auth_token, {k.key: key_from(k) for k in keys}
