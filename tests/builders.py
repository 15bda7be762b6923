"""Builders of test configuration straight into the database (no admin API needed)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.storage import tables as t
from callbid.api.auth import hash_token, new_token

_NEXT_NUMBER = count(2000)


def _fresh_number() -> str:
    return f"+1888555{next(_NEXT_NUMBER):04d}"


@dataclass
class Built:
    company_id: int
    token: str
    campaign_id: int
    key: str
    target_ids: list[int] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    pool_numbers: list[str] = field(default_factory=list)


async def build_campaign(
    sessions: async_sessionmaker[AsyncSession],
    *,
    targets: list[dict[str, Any]] | None = None,
    key: dict[str, Any] | None = None,
    criteria: list[dict[str, Any]] | None = None,
    publishers: list[dict[str, Any]] | None = None,
    numbers: tuple[str, ...] | None = None,
    pool_numbers: tuple[str, ...] = (),
    campaign: dict[str, Any] | None = None,
    groups: list[dict[str, Any]] | None = None,
    caller_lists: list[dict[str, Any]] | None = None,
    carrier_token: str | None = None,
) -> Built:
    """A company with one campaign; `groups` entries take `members` as target indexes and
    `caller_lists` are referenced by index from a target's `caller_list` or the campaign's
    `blocked_lists`."""
    token = new_token()
    async with sessions.begin() as session:
        company = t.Company(
            name=f"company-{uuid.uuid4().hex[:8]}",
            token_hash=hash_token(token),
            carrier_auth_token=carrier_token,
        )
        session.add(company)
        await session.flush()
        cid = company.id
        lists = [
            t.CallerList(company_id=cid, name=f"list{i}", **spec)
            for i, spec in enumerate(caller_lists or [])
        ]
        session.add_all(lists)
        await session.flush()
        campaign_spec = dict(campaign or {})
        blocked = [lists[i].id for i in campaign_spec.pop("blocked_lists", [])]
        row = t.Campaign(
            company_id=cid, name="test campaign", blocked_list_ids=blocked, **campaign_spec
        )
        session.add(row)
        await session.flush()
        built = Built(cid, token, row.id, str(uuid.uuid4()))
        for number in numbers if numbers is not None else (_fresh_number(),):
            session.add(t.TrackingNumber(company_id=cid, campaign_id=row.id, number=number))
            built.numbers.append(number)
        if pool_numbers:
            pool = t.NumberPool(company_id=cid, campaign_id=row.id, name="pool")
            session.add(pool)
            await session.flush()
            for number in pool_numbers:
                session.add(
                    t.TrackingNumber(
                        company_id=cid, campaign_id=row.id, number=number, pool_id=pool.id
                    )
                )
                built.pool_numbers.append(number)
        for index, spec in enumerate(targets if targets is not None else [{}]):
            spec = dict(spec)
            list_index = spec.pop("caller_list", None)
            values: dict[str, Any] = {
                "name": f"target{index}",
                "destination": f"+1312555{index:04d}",
            }
            values.update(spec)
            if list_index is not None:
                values["caller_list_id"] = lists[list_index].id
            target = t.Target(company_id=cid, **values)
            session.add(target)
            await session.flush()
            session.add(t.CampaignTarget(campaign_id=row.id, target_id=target.id))
            built.target_ids.append(target.id)
        for spec in groups or []:
            spec = dict(spec)
            members = spec.pop("members")
            group = t.TargetGroup(company_id=cid, name="group", **spec)
            session.add(group)
            await session.flush()
            for index in members:
                session.add(
                    t.TargetGroupMember(group_id=group.id, target_id=built.target_ids[index])
                )
        for spec in publishers or []:
            session.add(t.Publisher(company_id=cid, **spec))
        for position, spec in enumerate(criteria or []):
            session.add(
                t.ConversionCriterion(company_id=cid, campaign_id=row.id, position=position, **spec)
            )
        session.add(t.RtbKey(key=built.key, company_id=cid, campaign_id=row.id, **(key or {})))
    return built
