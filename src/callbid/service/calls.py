"""Calls, whatever the carrier: a call arrives, claims its reservation or is routed, tries its
legs, connects, ends and converts.

Each use case runs under the call's lock (two webhooks for one call are handled in turn), reads
the call's row, asks the hot state (one atomic step each: claim, dial, count, end) and commits
the row with its pixels in one group-writer batch before answering, so a crash loses nothing
the carrier was told. The row keeps what the hot state holds for the call, so a restart puts
it back (`restore_calls`), and the sweeper closes calls whose end never came
(`close_overdue`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.storage.calls import (
    as_dict,
    call_by_sid,
    cap_counts,
    last_conversions,
    live_calls,
    overdue_calls,
    recent_reservations_on,
)
from callbid.adapters.storage.reservations import get_reservation
from callbid.adapters.storage.tables import Call, Reservation
from callbid.adapters.storage.writer import WriteOp
from callbid.domain.calls import CallStarted, Leg, RouteAnswer
from callbid.domain.conversion import EndedCall, Promise, convert
from callbid.domain.errors import NotFound
from callbid.domain.model import Campaign, CapTrigger, PingRequest
from callbid.domain.pixels import PixelEvent
from callbid.domain.reserve import (
    CallHold,
    CapSubject,
    HoldStatus,
    namespace,
    period_counters,
    target_subjects,
)
from callbid.domain.routing import plan_call
from callbid.hotstate.protocol import HotState
from callbid.ids import new_id
from callbid.runtime import Runtime
from callbid.service.configs import LineConfig
from callbid.service.events import log_call_event
from callbid.service.intake import derive_tags
from callbid.service.pixels import pixel_ops, pixel_tokens

#: Said to a caller nobody can take, before hanging up.
FALLBACK = "We are sorry, nobody can take your call right now. Please try again later."


class Match:
    """How a call met the reservations (the call flow's reason when it did not claim one)."""

    CLAIMED = "claimed"
    EXPIRED = "expired"
    ALREADY_CLAIMED = "already_claimed"
    WIPED = "wiped"
    OTHER_CALLER = "other_caller"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class CallAnswer:
    """Where the call goes now (first leg; the rest are its fallbacks) and how it matched.

    A call's row keeps the same list in `legs`: the leg being dialled, then what is left."""

    call_uuid: str
    route: RouteAnswer
    match: str
    reservation_uuid: str | None
    status: str


def explain_miss(
    rows: Sequence[Reservation], caller: str | None, now: datetime
) -> tuple[str, str | None]:
    """Why a call to a number did not claim a reservation, from that number's latest
    reservations (newest first): the caller's own latest one expired, was claimed or wiped;
    another caller holds the number; or nothing was reserved for it."""
    for row in rows:
        if row.expires_at is None or row.target_id is None or row.status == "no-target":
            continue
        if (caller is not None and row.caller_number == caller) or row.pool_number is not None:
            if row.claimed_at is not None:
                return Match.ALREADY_CLAIMED, row.uuid
            if row.wiped_at is not None:
                return Match.WIPED, row.uuid
            if row.expires_at <= now:
                return Match.EXPIRED, row.uuid
            # Live in the database yet not claimable: a concurrent call claimed it and has
            # not committed yet.
            return Match.ALREADY_CLAIMED, row.uuid
    for row in rows:
        if (
            row.status in ("reserved", "confirmed")
            and row.expires_at is not None
            and row.expires_at > now
        ):
            return Match.OTHER_CALLER, None
    return Match.NONE, None


def flow_event(at: datetime, event: str, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": at.isoformat(timespec="milliseconds"), "event": event}
    if detail is not None:
        entry["detail"] = detail
    entry.update((k, v) for k, v in extra.items() if v is not None)
    return entry


def leg_dict(leg: Leg) -> dict[str, Any]:
    return {
        "destination": leg.destination,
        "ring_timeout": leg.ring_timeout,
        "target_id": leg.target_id,
    }


def leg_of(data: Mapping[str, Any]) -> Leg:
    return Leg(str(data["destination"]), int(data["ring_timeout"]), int(data["target_id"]))


async def start_call(
    runtime: Runtime,
    line: LineConfig,
    started: CallStarted,
    *,
    dialect: str,
    tags: Mapping[str, str],
) -> CallAnswer:
    """A call arrived on `line`: claim its reservation or route it, and hold the first leg's
    target. A repeated webhook for the same call gets the same answer."""
    campaign = line.campaign
    company = campaign.company_id
    async with runtime.call_locks.hold((company, started.call_sid)):
        async with runtime.sessions() as session:
            existing = await call_by_sid(session, company, started.call_sid)
        if existing is not None:
            return _answer(as_dict(existing))
        now = runtime.clock()
        stamp = now.timestamp()
        until = stamp + runtime.settings.call_max_seconds
        ns = namespace(company)
        claimed = await runtime.store.claim(
            ns, started.call_sid, started.dialled, started.caller, stamp, until
        )
        row = _new_row(campaign, started, dialect, now, until)
        flow = row["flow"]
        flow.append(flow_event(now, "call_started", f"to {started.dialled}"))
        reservation: Reservation | None = None
        if claimed is not None:
            async with runtime.sessions() as session:
                reservation = await get_reservation(session, claimed.uuid)
        if claimed is not None and reservation is not None:
            key = line.keys.get(reservation.key)
            row.update(
                match=Match.CLAIMED,
                reservation_uuid=claimed.uuid,
                strict=bool(key and key.strict_target),
                publisher_id=reservation.publisher_id,
                tags=dict(reservation.tags or {}),
                bid=claimed.revenue,
                promise={
                    "criterion_id": claimed.criterion_id,
                    "payout": claimed.payout,
                    "revenue": claimed.revenue,
                    "buffer_seconds": claimed.seconds,
                },
            )
            flow.append(flow_event(now, "matched", f"claimed reservation {claimed.uuid}"))
        else:
            async with runtime.sessions() as session:
                rows = await recent_reservations_on(
                    session, campaign.id, started.dialled, started.caller, now
                )
            match, missed = explain_miss(rows, started.caller, now)
            row.update(match=match, reservation_uuid=missed)
            tagged = derive_tags(tags, "", started.caller)
            tagged.pop("publisher_id", None)
            row["tags"] = tagged
            flow.append(flow_event(now, "not_matched", match, reservation=missed))
        request = PingRequest(
            "", row["publisher_id"] or "", started.caller, started.dialled, row["tags"]
        )
        plan = plan_call(
            campaign,
            request,
            now=now,
            rng=runtime.rng,
            reserved_target=claimed.target_id if claimed else None,
            reserved_destination=reservation.destination if reservation else None,
            strict=row["strict"],
        )
        for verdict in plan.verdicts:
            flow.append(flow_event(now, "routing", verdict.outcome, target_id=verdict.target_id))
        if claimed is not None and reservation is not None and not plan.legs:
            flow.append(flow_event(now, "routing", "reserved target left the campaign"))
        await _dial_from(runtime, campaign, row, list(plan.legs), now)
        ops = [runtime.call_writes.created(row)]
        if row["match"] == Match.CLAIMED:
            ops.append(runtime.call_writes.claimed(row["reservation_uuid"], now))
        ops += _pixels(campaign, PixelEvent.CALL_STARTED, row, now)
        await runtime.writer.write(*ops)
        log_call_event("call.started", row)
        return _answer(row)


async def leg_failed(runtime: Runtime, line: LineConfig, call_sid: str, status: str) -> CallAnswer:
    """The leg being dialled did not answer (busy, no answer, failed, cancelled): dial the
    next one that has room, or give up."""
    async with _locked_call(runtime, line, call_sid) as row:
        if row["status"] == "ended" or row["connected_at"] is not None:
            return _answer(row, legs=False)
        now = runtime.clock()
        row["flow"].append(flow_event(now, f"leg_{status}", target_id=row["target_id"]))
        remaining = [leg_of(leg) for leg in row["legs"][1:]]
        if not remaining:
            await runtime.store.end_call(
                namespace(line.campaign.company_id), call_sid, False, now.timestamp()
            )
        await _dial_from(runtime, line.campaign, row, remaining, now)
        await runtime.writer.write(runtime.call_writes.updated(row))
        log_call_event("call.leg_failed", row, leg_status=status)
        return _answer(row)


async def leg_answered(
    runtime: Runtime, line: LineConfig, call_sid: str, target_id: int | None = None
) -> CallAnswer:
    """The dialled target answered: the call is connected (and counts, when the target
    counts on connect). `target_id` names the target when the switch chose among the
    fallbacks itself."""
    async with _locked_call(runtime, line, call_sid) as row:
        if row["status"] == "ended" or row["connected_at"] is not None:
            return _answer(row, legs=False)
        now = runtime.clock()
        campaign = line.campaign
        ns = namespace(campaign.company_id)
        if target_id is not None and target_id != row["target_id"]:
            target = campaign.target(target_id)
            if target is None:
                raise NotFound(f"target {target_id} is not in the call's campaign")
            subjects = target_subjects(target, campaign.groups, now)
            stamp = now.timestamp()
            held, reason = await runtime.store.dial(
                ns, call_sid, target_id, subjects, stamp, row["hold_until"].timestamp()
            )
            _record_hold(row, target_id, target.destination, subjects, held)
            if held is HoldStatus.CAPPED:
                row["flow"].append(flow_event(now, "over_cap", reason, target_id=target_id))
        row.update(status="connected", connected_at=now)
        row["flow"].append(flow_event(now, "answered", target_id=row["target_id"]))
        ops: list[WriteOp] = []
        target = campaign.target(row["target_id"]) if row["target_id"] is not None else None
        counts = target is not None and target.cap_trigger is CapTrigger.CONNECT
        if counts and await runtime.store.count_call(ns, call_sid, now.timestamp()):
            ops += runtime.call_writes.counted(campaign.company_id, row["counters"])
            row["counted"] = True
        ops.append(runtime.call_writes.updated(row))
        ops += _pixels(campaign, PixelEvent.ANSWERED, row, now)
        await runtime.writer.write(*ops)
        log_call_event("call.connected", row)
        return _answer(row, legs=False)


async def call_ended(
    runtime: Runtime,
    line: LineConfig,
    call_sid: str,
    *,
    connected_seconds: int | None,
    duration_seconds: int | None = None,
) -> CallAnswer:
    """The call (or its connected leg) ended: free its target, decide the conversion.

    `connected_seconds` is the connected leg's talk time when the carrier reports it (else it
    is counted from the answer). A later report of the same end only adds the duration."""
    async with _locked_call(runtime, line, call_sid) as row:
        now = runtime.clock()
        if row["status"] == "ended":
            if duration_seconds is not None and row["duration_seconds"] is None:
                row["duration_seconds"] = duration_seconds
                await runtime.writer.write(runtime.call_writes.updated(row))
            return _answer(row, legs=False)
        await _finish(runtime, line.campaign, row, now, connected_seconds, duration_seconds)
        return _answer(row, legs=False)


async def _finish(
    runtime: Runtime,
    campaign: Campaign,
    row: dict[str, Any],
    now: datetime,
    connected_seconds: int | None,
    duration_seconds: int | None,
    *,
    note: str | None = None,
) -> None:
    connected_at = row["connected_at"]
    if connected_seconds is None:
        connected_seconds = int((now - connected_at).total_seconds()) if connected_at else 0
    connected_seconds = max(connected_seconds, 0)
    if connected_seconds > 0 and connected_at is None:
        row["connected_at"] = now - timedelta(seconds=connected_seconds)
    promise = row["promise"]
    caller = row["caller_number"]
    earlier: dict[int, float] = {}
    if promise is None and caller is not None:
        async with runtime.sessions() as session:
            earlier = await last_conversions(session, campaign.id, caller)
    conversion = convert(
        campaign.criteria,
        EndedCall(
            publisher_id=row["publisher_id"] or "",
            tags=row["tags"],
            connected_seconds=connected_seconds,
            ended_at=now.timestamp(),
            promise=Promise(**promise) if promise else None,
            bid=row["bid"],
            duplicate=row["duplicate"],
            last_conversions=earlier,
        ),
    )
    target = campaign.target(row["target_id"]) if row["target_id"] is not None else None
    trigger = target.cap_trigger if target is not None else CapTrigger.CONNECT
    count = (trigger is CapTrigger.CONNECT and connected_seconds > 0) or (
        trigger is CapTrigger.CONVERSION and conversion.converted
    )
    ns = namespace(campaign.company_id)
    ops: list[WriteOp] = []
    held = await runtime.store.end_call(ns, row["call_sid"], count, now.timestamp())
    if held is not None and held.counted and not row["counted"]:
        ops += runtime.call_writes.counted(campaign.company_id, held.counters)
        row["counted"] = True
    row.update(
        status="ended",
        ended_at=now,
        connected_seconds=connected_seconds,
        duration_seconds=duration_seconds,
        holds=False,
        hold_until=None,
        converted=conversion.converted,
        converted_at=now if conversion.converted else None,
        criterion_id=conversion.criterion_id,
        payout=conversion.payout if conversion.converted else 0.0,
        revenue=conversion.revenue if conversion.converted else 0.0,
        conversion_info=note or conversion.reason,
    )
    flow = row["flow"]
    flow.append(flow_event(now, "ended", note or f"connected {connected_seconds} s"))
    if conversion.converted:
        flow.append(
            flow_event(
                now,
                "converted",
                f"payout {conversion.payout}",
                criterion_id=conversion.criterion_id,
            )
        )
    else:
        flow.append(flow_event(now, "not_converted", conversion.reason))
    ops.append(runtime.call_writes.updated(row))
    if conversion.converted:
        ops += _pixels(campaign, PixelEvent.CONVERTED, row, now)
    await runtime.writer.write(*ops)
    log_call_event("call.ended", row, note=note)


async def _dial_from(
    runtime: Runtime, campaign: Campaign, row: dict[str, Any], legs: list[Leg], now: datetime
) -> None:
    """Hold the first leg of `legs` with room and keep the rest as its fallbacks; with none
    left, the call holds nothing and is told the fallback."""
    ns = namespace(campaign.company_id)
    stamp, until = now.timestamp(), row["hold_until"].timestamp()
    while legs:
        leg = legs.pop(0)
        target = campaign.target(leg.target_id)
        if target is None:
            row["flow"].append(
                flow_event(now, "skipped", "target left the campaign", target_id=leg.target_id)
            )
            continue
        subjects = target_subjects(target, campaign.groups, now)
        held, reason = await runtime.store.dial(
            ns, row["call_sid"], leg.target_id, subjects, stamp, until
        )
        if held is HoldStatus.HELD:
            _record_hold(row, leg.target_id, leg.destination, subjects, held)
            row["legs"] = [leg_dict(leg), *(leg_dict(rest) for rest in legs)]
            row["flow"].append(flow_event(now, "dialing", leg.destination, target_id=leg.target_id))
            return
        row["flow"].append(flow_event(now, "skipped", reason, target_id=leg.target_id))
    row.update(target_id=None, destination=None, legs=[], holds=False, subject_keys=[], counters=[])
    row["flow"].append(flow_event(now, "fallback", "no target left"))


def _record_hold(
    row: dict[str, Any],
    target_id: int,
    destination: str,
    subjects: tuple[CapSubject, ...],
    held: HoldStatus,
) -> None:
    holding = held is HoldStatus.HELD
    row.update(
        target_id=target_id,
        destination=destination,
        holds=holding,
        subject_keys=[s.key for s in subjects] if holding else [],
        counters=list(period_counters(subjects)) if holding else [],
    )


def _new_row(
    campaign: Campaign, started: CallStarted, dialect: str, now: datetime, until: float
) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "company_id": campaign.company_id,
        "campaign_id": campaign.id,
        "call_sid": started.call_sid,
        "dialect": dialect,
        "caller_number": started.caller,
        "dialled_number": started.dialled,
        "publisher_id": None,
        "reservation_uuid": None,
        "match": Match.NONE,
        "strict": False,
        "tags": {},
        "status": "routing",
        "target_id": None,
        "destination": None,
        "legs": [],
        "holds": False,
        "subject_keys": [],
        "counters": [],
        "counted": False,
        "hold_until": datetime.fromtimestamp(until, UTC),
        "promise": None,
        "bid": None,
        "duplicate": False,
        "started_at": now,
        "connected_at": None,
        "ended_at": None,
        "connected_seconds": None,
        "duration_seconds": None,
        "converted": False,
        "converted_at": None,
        "criterion_id": None,
        "payout": None,
        "revenue": None,
        "conversion_info": None,
        "flow": [],
    }


def _answer(row: Mapping[str, Any], *, legs: bool = True) -> CallAnswer:
    route: tuple[Leg, ...] = ()
    if legs and row["status"] != "ended" and row["target_id"] is not None:
        route = tuple(leg_of(leg) for leg in row["legs"])
    return CallAnswer(
        call_uuid=row["uuid"],
        route=RouteAnswer(route, FALLBACK),
        match=row["match"],
        reservation_uuid=row["reservation_uuid"],
        status=row["status"],
    )


def _pixels(
    campaign: Campaign, event: PixelEvent, row: Mapping[str, Any], now: datetime
) -> list[WriteOp]:
    tokens = pixel_tokens(
        event=event,
        reservation_uuid=row["reservation_uuid"] if row["match"] == Match.CLAIMED else None,
        call_uuid=row["uuid"],
        caller_number=row["caller_number"],
        publisher_id=row["publisher_id"],
        payout=row["payout"],
        revenue=row["revenue"],
        inbound_number=row["dialled_number"],
        target_id=row["target_id"],
        campaign_id=campaign.id,
        tags=row["tags"],
    )
    return pixel_ops(campaign, event, tokens, now)


@asynccontextmanager
async def _locked_call(
    runtime: Runtime, line: LineConfig, call_sid: str
) -> AsyncIterator[dict[str, Any]]:
    """The call's row as a dict, under the call's lock; NotFound for another campaign's."""
    company = line.campaign.company_id
    async with runtime.call_locks.hold((company, call_sid)):
        async with runtime.sessions() as session:
            found = await call_by_sid(session, company, call_sid)
        if found is None or found.campaign_id != line.campaign.id:
            raise NotFound("call not found")
        yield as_dict(found)


async def close_overdue(runtime: Runtime) -> int:
    """End calls whose end was never reported once their maximum duration has passed: their
    slots have lapsed in the hot state already; the row says so and nothing converts."""
    now = runtime.clock()
    async with runtime.sessions() as session:
        rows = await overdue_calls(session, now)
    closed = 0
    for found in rows:
        line = await runtime.configs.line(found.dialled_number)
        if line is None or line.campaign.id != found.campaign_id:
            continue
        async with _locked_call(runtime, line, found.call_sid) as row:
            if row["status"] == "ended":
                continue
            await _finish(
                runtime,
                line.campaign,
                row,
                now,
                0,
                None,
                note="closed by the sweeper: no end was reported",
            )
            closed += 1
    return closed


async def restore_calls(
    store: HotState, sessions: async_sessionmaker[AsyncSession], now: datetime
) -> int:
    """Put live calls' holds and the period counts back into a store that lost them."""
    async with sessions() as session:
        rows = await live_calls(session, now)
        counts = await cap_counts(session)
    holds: dict[int, list[CallHold]] = {}
    for row in rows:
        holds.setdefault(row.company_id, []).append(_hold_of(row))
    totals: dict[int, dict[str, int]] = {}
    for count in counts:
        totals.setdefault(count.company_id, {})[count.counter] = count.count
    restored = 0
    for company in set(holds) | set(totals):
        restored += await store.restore_calls(
            namespace(company), holds.get(company, []), totals.get(company, {}), now.timestamp()
        )
    return restored


def _hold_of(row: Call) -> CallHold:
    assert row.target_id is not None
    assert row.hold_until is not None
    return CallHold(
        call_key=row.call_sid,
        target_id=row.target_id,
        subject_keys=tuple(row.subject_keys or ()),
        counters=tuple(row.counters or ()),
        until=row.hold_until.timestamp(),
        counted=row.counted,
    )
