"""Publisher use cases: ping (reserve), confirm, read and release a reservation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from callbid.adapters.storage.reservations import ReservationWrites, get_reservation
from callbid.adapters.storage.tables import Reservation
from callbid.adapters.storage.writer import WriteOp
from callbid.domain.bidding import needs_buyers
from callbid.domain.decide import Decision, LogRow, PingPlan, PingStatus, conclude, plan_ping
from callbid.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from callbid.domain.model import Campaign, PingRequest, Publisher
from callbid.domain.reasons import ReasonCode
from callbid.domain.reserve import (
    HoldStatus,
    LiveReservation,
    ReserveResult,
    ReserveStatus,
    namespace,
    publisher_subject,
    target_subjects,
)
from callbid.ids import new_id
from callbid.runtime import Runtime
from callbid.service.buyers import ask_buyers, buyer_deadline, loop_time, release_unused
from callbid.service.configs import KeyConfig
from callbid.service.intake import build_request, key_of, publisher_of
from callbid.service.pixels import reserved_pixel_ops


@dataclass(frozen=True, slots=True)
class PingAnswer:
    """What the publisher is told about a reservation, in either API's shape; `reason_code`
    (`domain.reasons.ReasonCode`) says why a ping or a confirmation was not reserved."""

    uuid: str
    status: str
    payout: float | None = None
    seconds: int | None = None
    inbound_number: str | None = None
    expires_at: datetime | None = None
    caller_number: str | None = None
    info: str | None = None
    shielded: bool = False
    claimed_at: datetime | None = None
    wiped_at: datetime | None = None
    target_id: int | None = None
    criterion_id: int | None = None
    tags: Mapping[str, str] | None = None
    reason_code: str | None = None


async def authorize(runtime: Runtime, params: Mapping[str, str]) -> KeyConfig:
    """The key's configuration; 401 for a missing or unknown key, 403 for a paused one."""
    config = await runtime.configs.get(key_of(params))
    if config is None:
        raise Unauthorized("FAILED invalid key")
    if config.key.paused:
        raise Forbidden("FAILED key is paused")
    return config


async def handle_ping(
    runtime: Runtime, params: Mapping[str, str], *, api: str = "rtb"
) -> PingAnswer:
    """Reserve a buyer for a publisher's caller, or say why not. The answer is given only once
    the reservation and its decision log are committed."""
    started = loop_time()
    config = await authorize(runtime, params)
    key, campaign = config.key, config.campaign
    publisher_id = publisher_of(params)
    publisher = campaign.publishers.get(publisher_id) or Publisher(publisher_id)
    if publisher.blocked:
        raise Forbidden("FAILED publisher is blocked")
    request = build_request(
        params, key=key.key, publisher_id=publisher_id, allow_no_caller=key.allow_no_caller
    )
    now, uuid = runtime.clock(), new_id()
    plan = plan_ping(
        campaign, key, publisher, request, uuid=uuid, now=now, rng=runtime.rng, memo=config.memo
    )
    result: ReserveResult | None = None
    asked = runtime.buyers is not None and needs_buyers(campaign, plan)
    if asked:
        assert runtime.buyers is not None
        deadline = buyer_deadline(started, key, runtime.overhead.estimate())
        plan, result = await ask_buyers(
            runtime.store,
            runtime.buyers,
            runtime.metrics,
            campaign,
            request,
            plan,
            deadline=deadline,
        )
        answered = loop_time()
    if plan.order is not None and result is None:
        result = await runtime.store.reserve(plan.order)
    if result is not None and result.status is ReserveStatus.RATE_LIMITED:
        raise RateLimited("FAILED rate limit exceeded", retry_after=result.retry_after)
    if result is not None and result.status is ReserveStatus.SHIELDED:
        assert result.record is not None
        if asked and runtime.buyers is not None:  # a concurrent ping for the caller won
            release_unused(runtime.buyers, campaign, request, plan, winner=None)
        return _answer_of(result.record, PingStatus.RESERVED, shielded=True)
    decision = conclude(plan, result)
    if asked and plan.replies:
        assert runtime.buyers is not None
        winner = decision.record.target_id if decision.record is not None else None
        release_unused(runtime.buyers, campaign, request, plan, winner)
    ops = _creation_ops(runtime, campaign, request, plan, decision, uuid=uuid, now=now, api=api)
    try:
        await runtime.writer.write(*ops)
    except Exception:
        if decision.record is not None:
            await runtime.store.release(namespace(campaign.company_id), uuid)
        raise
    if asked:
        runtime.overhead.observe(loop_time() - answered)
    runtime.metrics.observe_ping(decision.status, loop_time() - started)
    if decision.record is not None:
        return _answer_of(decision.record, decision.status, tags=request.tags)
    return PingAnswer(
        uuid,
        decision.status,
        caller_number=request.caller_number,
        info=decision.info,
        tags=request.tags,
        reason_code=decision.reason_code,
    )


def _answer_of(
    record: LiveReservation,
    status: str,
    *,
    shielded: bool = False,
    tags: Mapping[str, str] | None = None,
) -> PingAnswer:
    return PingAnswer(
        uuid=record.uuid,
        status=status,
        payout=record.payout,
        seconds=record.seconds,
        inbound_number=record.inbound_number,
        expires_at=datetime.fromtimestamp(record.expires_at, UTC),
        caller_number=record.caller_number,
        shielded=shielded,
        target_id=record.target_id,
        criterion_id=record.criterion_id,
        tags=tags,
    )


def _creation_ops(
    runtime: Runtime,
    campaign: Campaign,
    request: PingRequest,
    plan: PingPlan,
    decision: Decision,
    *,
    uuid: str,
    now: datetime,
    api: str,
) -> list[WriteOp]:
    record = decision.record
    row: dict[str, Any] = {
        "uuid": uuid,
        "company_id": campaign.company_id,
        "campaign_id": campaign.id,
        "key": request.key,
        "api": api,
        "publisher_id": request.publisher_id,
        "caller_number": request.caller_number,
        "tags": request.tags,
        "status": str(decision.status),
        "info": decision.info,
        "owner_info": decision.owner_info,
        "reason_code": str(decision.reason_code) if decision.reason_code else None,
        "matched_criteria": list(plan.matched_criteria),
        "created_at": now,
        "target_id": record.target_id if record else None,
        "criterion_id": record.criterion_id if record else None,
        "payout": record.payout if record else None,
        "seconds": record.seconds if record else None,
        "revenue": record.revenue if record else None,
        "inbound_number": record.inbound_number if record else None,
        "pool_number": record.pool_number if record else None,
        "holds": record.holds if record else False,
        "subject_keys": list(record.subject_keys) if record else [],
        "shield_key": record.shield_key if record else None,
        "expires_at": datetime.fromtimestamp(record.expires_at, UTC) if record else None,
        "confirmed_at": None,
        "claimed_at": None,
        "wiped_at": None,
        "destination": decision.destination,
        "decision_log": [log_entry(entry) for entry in decision.log],
    }
    writes = runtime.writes
    ops = [writes.created(row)]
    if record is not None:
        ops += reserved_pixel_ops(campaign, request, record, now=now)
    order = plan.order
    if (
        record is not None
        and order is not None
        and order.seen_key
        and request.caller_number
        and runtime.store.rebuilt_from_database
    ):
        until = now + timedelta(seconds=order.seen_ttl)
        ops.append(writes.seen(campaign.company_id, campaign.id, request.caller_number, now, until))
    return ops


def log_entry(row: LogRow) -> dict[str, Any]:
    """A decision log row as stored: the buyer's answer beside the outcome when it was asked."""
    entry: dict[str, Any] = {
        "position": row.position,
        "target_id": row.target_id,
        "target_name": row.target_name,
        "outcome": row.outcome,
    }
    ping = row.ping
    if ping is not None:
        entry["ping"] = {
            "outcome": str(ping.outcome),
            "latency_ms": ping.latency_ms,
            "http_status": ping.http_status,
            "bid": ping.bid,
            "number": ping.number,
            "seconds": ping.seconds,
            "detail": ping.detail,
            "body": ping.body,
        }
    return entry


async def _load_owned(runtime: Runtime, config: KeyConfig, uuid: str) -> Reservation:
    async with runtime.sessions() as session:
        row = await get_reservation(session, uuid)
    if row is None or row.campaign_id != config.campaign.id:
        raise NotFound("FAILED reservation not found")
    return row


def effective_status(row: Reservation, now: datetime) -> str:
    """The stored status, read as `expired` once a live reservation's TTL has passed."""
    if (
        row.status in ("reserved", "confirmed")
        and row.expires_at is not None
        and row.expires_at <= now
    ):
        return PingStatus.EXPIRED
    return row.status


def answer_of_row(row: Reservation, status: str) -> PingAnswer:
    return PingAnswer(
        uuid=row.uuid,
        status=status,
        payout=row.payout,
        seconds=row.seconds,
        inbound_number=row.inbound_number,
        expires_at=row.expires_at,
        caller_number=row.caller_number,
        info=row.info,
        claimed_at=row.claimed_at,
        wiped_at=row.wiped_at,
        target_id=row.target_id,
        criterion_id=row.criterion_id,
        tags=row.tags,
    )


async def read_reservation(runtime: Runtime, params: Mapping[str, str], uuid: str) -> PingAnswer:
    config = await authorize(runtime, params)
    row = await _load_owned(runtime, config, uuid)
    return answer_of_row(row, effective_status(row, runtime.clock()))


async def confirm_reservation(runtime: Runtime, params: Mapping[str, str], uuid: str) -> PingAnswer:
    """Make a reservation count against caps; `no-target` when they filled meanwhile."""
    config = await authorize(runtime, params)
    wanted = params.get("status", "").strip().lower()
    if wanted != "confirmed":
        raise InvalidInput("FAILED status must be confirmed")
    row = await _load_owned(runtime, config, uuid)
    now = runtime.clock()
    status = effective_status(row, now)
    if status == PingStatus.CONFIRMED:
        return answer_of_row(row, status)
    if status != PingStatus.RESERVED:
        raise Conflict(f"FAILED reservation is {status}")
    campaign = config.campaign
    ns = namespace(campaign.company_id)
    target = campaign.target(row.target_id) if row.target_id is not None else None
    if target is None:
        gone = "target left the campaign before confirmation"
        return await _refuse(runtime, ns, uuid, gone, ReasonCode.NO_BUYER_OPEN)
    subjects = target_subjects(target, campaign.groups, now)
    publisher = campaign.publishers.get(row.publisher_id)
    extra = publisher_subject(publisher, now) if publisher else None
    subjects += (extra,) if extra else ()
    held, reason = await runtime.store.hold(ns, uuid, subjects, now.timestamp())
    if held is HoldStatus.UNKNOWN:
        raise Conflict("FAILED reservation is expired")
    if held is HoldStatus.CAPPED:
        capped = f"capped at confirmation ({reason})"
        return await _refuse(runtime, ns, uuid, capped, ReasonCode.CAPPED)
    await runtime.writer.write(ReservationWrites.confirmed(uuid, now, [s.key for s in subjects]))
    return answer_of_row(row, PingStatus.CONFIRMED)


async def _refuse(
    runtime: Runtime, ns: str, uuid: str, info: str, reason: ReasonCode
) -> PingAnswer:
    await runtime.store.release(ns, uuid)
    await runtime.writer.write(ReservationWrites.refused(uuid, info))
    return PingAnswer(uuid, PingStatus.NO_TARGET, reason_code=reason)


async def wipe_reservation(runtime: Runtime, params: Mapping[str, str], uuid: str) -> PingAnswer:
    """Release a live reservation at once; its capacity, shield and pool number are freed."""
    config = await authorize(runtime, params)
    row = await _load_owned(runtime, config, uuid)
    now = runtime.clock()
    status = effective_status(row, now)
    if status == PingStatus.WIPED:
        return answer_of_row(row, status)
    if status not in (PingStatus.RESERVED, PingStatus.CONFIRMED):
        raise Conflict(f"FAILED reservation is {status}")
    await runtime.store.release(namespace(config.campaign.company_id), uuid)
    await runtime.writer.write(ReservationWrites.wiped(uuid, now))
    row.wiped_at = now
    return answer_of_row(row, PingStatus.WIPED)
