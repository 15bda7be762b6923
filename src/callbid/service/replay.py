"""Replay a stored request on today's configuration: what the same ping would get now.

The request is rebuilt from the stored row (key, publisher, caller, tags, shared inbound
number), planned on the key's configuration as loaded now, and decided by the same pure core as
a ping (`decide.plan_ping`, `bidding`, `decide.conclude`), with a random source seeded from the
uuid. The hot state is only read (`HotState.preview`): caps, concurrency, duplicates and pool
numbers are today's, and nothing is reserved, written or sent.

Buyers are never pinged: a buyer the original ping asked answers with its stored reply, and a
buyer it did not ask is taken out of the replay's order with the outcome `would_ping` (not
pinged in a replay), so a later target may win in its place. No rate limit applies, and the
original reservation does not count as a rival: its own shield entry and its own sighting of
the caller are left out (while it lives, it still holds whatever capacity it holds). A key that
is gone or paused, a blocked publisher or a request today's configuration refuses is the
replay's answer (`rejected`, with the message a ping would get), not an error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from random import Random
from typing import Any

from callbid.adapters.storage.reservations import get_reservation
from callbid.adapters.storage.tables import Reservation
from callbid.domain.bidding import apply_bids, buyers_to_ping, needs_buyers
from callbid.domain.decide import Decision, PingPlan, PingStatus, conclude, plan_ping
from callbid.domain.errors import InvalidInput, NotFound
from callbid.domain.model import Campaign, Publisher
from callbid.domain.replay import (
    ReplayRow,
    compare_logs,
    is_own_sighting,
    mark_unpinged,
    named_inbound,
    replay_order,
    stored_replies,
)
from callbid.domain.reserve import ReserveResult, ReserveStatus
from callbid.hotstate.protocol import HotState
from callbid.runtime import Runtime
from callbid.service.configs import KeyConfig
from callbid.service.intake import build_request
from callbid.service.ping import log_entry


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What the original request was answered, as stored."""

    status: str
    info: str | None
    owner_info: str | None
    target_id: int | None
    payout: float | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReplayAnswer:
    """What the same request would be answered now; `reason_code` as a ping's."""

    status: str
    info: str | None
    owner_info: str | None
    target_id: int | None = None
    target_name: str | None = None
    payout: float | None = None
    reason_code: str | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    """A replay: both answers, one row per target of either decision, and the replay's own
    decision log (rows as stored by a ping, `service.ping.log_entry`)."""

    uuid: str
    replayed_at: datetime
    original: StoredAnswer
    now: ReplayAnswer
    rows: tuple[ReplayRow, ...]
    decision_log: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        original = asdict(self.original) | {"created_at": _iso(self.original.created_at)}
        return {
            "uuid": self.uuid,
            "replayed_at": _iso(self.replayed_at),
            "original": original,
            "now": asdict(self.now),
            "rows": [asdict(row) | {"changed": row.changed} for row in self.rows],
            "decision_log": list(self.decision_log),
        }


async def replay_reservation(runtime: Runtime, company_id: int, uuid: str) -> Replay:
    """Replay the company's request `uuid` on today's configuration; reads only.

    Raises NotFound for a missing request or another company's (indistinguishable)."""
    row = await _load_row(runtime, company_id, uuid)
    now = runtime.clock()
    config = await runtime.configs.get(row.key)
    answer, log = await _decide(runtime, row, _usable(config, company_id), now)
    return Replay(
        uuid=row.uuid,
        replayed_at=now,
        original=StoredAnswer(
            row.status, row.info, row.owner_info, row.target_id, row.payout, row.created_at
        ),
        now=answer,
        rows=compare_logs(row.decision_log, log),
        decision_log=log,
    )


async def _load_row(runtime: Runtime, company_id: int, uuid: str) -> Reservation:
    async with runtime.sessions() as session:
        row = await get_reservation(session, uuid.strip().lower())
    if row is None or row.company_id != company_id:
        raise NotFound("reservation not found")
    return row


def _usable(config: KeyConfig | None, company_id: int) -> KeyConfig | None:
    return config if config is not None and config.key.company_id == company_id else None


async def _decide(
    runtime: Runtime, row: Reservation, config: KeyConfig | None, now: datetime
) -> tuple[ReplayAnswer, tuple[dict[str, Any], ...]]:
    refusal = _refusal(config, row.publisher_id)
    if refusal is not None:
        return _rejected(*refusal), ()
    assert config is not None
    campaign = config.campaign
    try:
        plan = _plan(config, row, now)
    except InvalidInput as exc:
        return _rejected(exc.info, "today's configuration refuses the request"), ()
    plan, result = await _preview(runtime, campaign, row, plan)
    decision = conclude(plan, result)
    log = tuple(log_entry(r) for r in mark_unpinged(decision.log, campaign, plan.replies))
    if result is not None and result.status is ReserveStatus.SHIELDED:
        return _shielded(campaign, result), log
    return _answer(campaign, decision), log


def _refusal(config: KeyConfig | None, publisher_id: str) -> tuple[str, str] | None:
    """(public message, owner's) of a ping refused before it is planned, as `handle_ping`."""
    if config is None:
        return "FAILED invalid key", "the key no longer exists"
    if config.key.paused:
        return "FAILED key is paused", "the key is paused"
    publisher = config.campaign.publishers.get(publisher_id)
    if publisher is not None and publisher.blocked:
        return "FAILED publisher is blocked", "the publisher is blocked"
    return None


def _plan(config: KeyConfig, row: Reservation, now: datetime) -> PingPlan:
    """The ping's plan on today's configuration; InvalidInput when it would be refused."""
    key, campaign = config.key, config.campaign
    params = {name: str(value) for name, value in row.tags.items()}
    params |= {"key": row.key, "caller_number": row.caller_number or ""}
    inbound = named_inbound(row.inbound_number, row.pool_number, campaign)
    params["inbound_number"] = inbound or ""
    request = build_request(
        params, key=key.key, publisher_id=row.publisher_id, allow_no_caller=key.allow_no_caller
    )
    publisher = campaign.publishers.get(row.publisher_id) or Publisher(row.publisher_id)
    rng = Random(row.uuid)
    return plan_ping(campaign, key, publisher, request, uuid=row.uuid, now=now, rng=rng)


async def _preview(
    runtime: Runtime, campaign: Campaign, row: Reservation, plan: PingPlan
) -> tuple[PingPlan, ReserveResult | None]:
    """The plan as the buyers' stored answers leave it, and what the hot state would answer."""
    if plan.order is None:
        return plan, None
    store, order = runtime.store, plan.order
    live = await store.get(order.namespace, row.uuid, order.now)
    order = replay_order(order, row.uuid, row.shield_key if live is not None else None)
    looked = await store.preview(order)
    if is_own_sighting(looked.last_seen, row.created_at.timestamp(), row.target_id is not None):
        order = replace(order, seen_key=None)
    plan = replace(plan, order=order)
    if runtime.buyers is not None and needs_buyers(campaign, plan):
        plan, result = await _stored_bids(store, campaign, plan, row.decision_log)
        if result is not None:
            return plan, result
    assert plan.order is not None
    return plan, await store.preview(plan.order)


async def _stored_bids(
    store: HotState, campaign: Campaign, plan: PingPlan, log: list[Any]
) -> tuple[PingPlan, ReserveResult | None]:
    """`service.buyers.ask_buyers` with the original's stored replies for the buyers'."""
    assert plan.order is not None
    probe = await store.preview(replace(plan.order, probe=True))
    if probe.status is not ReserveStatus.AVAILABLE:
        return plan, probe
    asked = buyers_to_ping(campaign, plan, (target_id for target_id, _ in probe.blocked))
    replies = stored_replies(log, (target_id for target_id, _ in asked))
    plan = apply_bids(campaign, plan, probe.blocked, replies)
    assert plan.order is not None
    if not plan.order.candidates:
        return plan, ReserveResult(ReserveStatus.NO_TARGET, last_seen=probe.last_seen)
    return plan, None


def _rejected(info: str, owner_info: str) -> ReplayAnswer:
    return ReplayAnswer(PingStatus.REJECTED, info, owner_info)


def _answer(campaign: Campaign, decision: Decision) -> ReplayAnswer:
    record = decision.record
    if record is None:
        reason = decision.reason_code
        return ReplayAnswer(decision.status, decision.info, decision.owner_info, reason_code=reason)
    target = campaign.target(record.target_id)
    name = target.name if target is not None else None
    return ReplayAnswer(
        decision.status, None, decision.owner_info, record.target_id, name, record.payout
    )


def _shielded(campaign: Campaign, result: ReserveResult) -> ReplayAnswer:
    """A ping shielded by another live reservation of the caller is answered with that one."""
    record = result.record
    assert record is not None
    target = campaign.target(record.target_id)
    owner = f"ping shield: answered with live reservation {record.uuid}"
    name = target.name if target is not None else None
    return ReplayAnswer(PingStatus.RESERVED, None, owner, record.target_id, name, record.payout)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
