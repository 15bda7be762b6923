"""The decision core: which targets may take a ping, in what order, at what payout, and why not.

Pure: it reads the loaded campaign, the request, `now` and a random source, and touches no
database, socket or clock. `plan_ping` turns a ping into a `ReserveOrder` for the hot state;
`conclude` turns the hot state's answer into the decision: status, public info, its reason code
(`domain/reasons.py`) and one decision log row per target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from random import Random

from callbid.domain.buyers import BuyerReply
from callbid.domain.errors import InvalidInput
from callbid.domain.filters import first_failing
from callbid.domain.hours import is_open
from callbid.domain.memo import PlanMemo
from callbid.domain.model import (
    Campaign,
    ConversionCriterion,
    ListKind,
    PayoutKind,
    PingRequest,
    Publisher,
    RtbKey,
    ShieldScope,
    Target,
)
from callbid.domain.reasons import OF_STATUS, ReasonCode, reason_of_targets
from callbid.domain.reserve import (
    LiveReservation,
    PayoutOption,
    RateRule,
    ReserveOrder,
    ReserveResult,
    ReserveStatus,
    namespace,
)


class Outcome(StrEnum):
    """Decision log outcomes that are not cap or filter reasons (those carry a detail)."""

    ELIGIBLE = "eligible"
    SELECTED = "selected"
    PAUSED = "paused"
    CLOSED = "closed"
    CALLER_LIST = "filtered:caller_list"
    DUPLICATE = "duplicate"
    PUBLISHER_CAPPED = "publisher_capped"
    UNPRICED = "unpriced"
    NOT_REACHED = "not_reached"
    OUTBID = "outbid"


class PingStatus(StrEnum):
    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    CLAIMED = "claimed"
    EXPIRED = "expired"
    WIPED = "wiped"
    REJECTED = "rejected"
    NO_TARGET = "no-target"


UNPRICED_INFO = "Unable to determine payout until the call converts"
PUBLIC_INFO = {
    ReserveStatus.DUPLICATE: "Duplicate caller",
    ReserveStatus.PUBLISHER_CAPPED: "Publisher capped",
    ReserveStatus.UNPRICED: UNPRICED_INFO,
}


#: What an eligible target's row says when the whole request was refused before reaching it.
UNTRIED = {
    ReserveStatus.DUPLICATE: Outcome.DUPLICATE,
    ReserveStatus.PUBLISHER_CAPPED: Outcome.PUBLISHER_CAPPED,
    ReserveStatus.UNPRICED: Outcome.UNPRICED,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    target_id: int
    target_name: str
    outcome: str


@dataclass(frozen=True, slots=True)
class PingPlan:
    """A ping before the hot state has been asked. With `rejection` set, no order is sent.

    Once buyers were asked (`bidding.apply_bids`): their `replies`, the candidates taken out
    of the order with their outcome (`skipped`), the numbers to dial for buyers that gave one
    (`destinations`), and whether the order is by bid. `reason` is the code of a request
    refused before the hot state (`rejection`, or no number to answer with).
    """

    verdicts: tuple[Verdict, ...]
    order: ReserveOrder | None
    rejection: str | None
    owner_info: str | None
    matched_criteria: tuple[int, ...]
    replies: tuple[BuyerReply, ...] = ()
    skipped: tuple[tuple[int, str], ...] = ()
    destinations: Mapping[int, str] = field(default_factory=dict)
    by_bid: bool = False
    reason: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class LogRow:
    """One target's line in the decision log; `ping` is its buyer's answer when it was asked
    (a row with `target_id` None is the campaign's own passthrough)."""

    position: int
    target_id: int | None
    target_name: str
    outcome: str
    ping: BuyerReply | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A concluded ping; `reason_code` is set exactly when it is `rejected` or `no-target`."""

    status: PingStatus
    info: str | None
    owner_info: str | None
    record: LiveReservation | None
    log: tuple[LogRow, ...]
    destination: str | None = None
    reason_code: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    """What a ping's tags, publisher and minute decide before any counter is read: one verdict
    per target, the eligible targets, the publisher's payout options."""

    verdicts: tuple[Verdict, ...]
    eligible: tuple[Target, ...]
    criteria: tuple[int, ...]
    options: tuple[PayoutOption, ...]
    payouts: tuple[float | None, ...]
    publisher_open: bool
    seen_ttl: int


def plan_ping(
    campaign: Campaign,
    key: RtbKey,
    publisher: Publisher,
    request: PingRequest,
    *,
    uuid: str,
    now: datetime,
    rng: Random,
    memo: PlanMemo | None = None,
) -> PingPlan:
    """Evaluate every target of `campaign` for `request` and build the hot-state order.

    `memo`, owned by the caller and kept with the campaign snapshot, spares re-deriving what
    the same tags decided earlier in the same minute. Raises InvalidInput when the ping names
    an inbound number the campaign does not own.
    """
    inbound, pool = choose_inbound(campaign, key, request)
    memo = memo if memo is not None else PlanMemo(campaign)
    stamp = now.timestamp()
    seen = memo.assessment(
        request, publisher, stamp, lambda: assess(campaign, publisher, request, now)
    )
    verdicts, caller = seen.verdicts, request.caller_number
    if caller is not None and caller in campaign.blocked_callers:
        owner = "caller on a block list"
        return PingPlan(
            verdicts, None, "Caller suppressed", owner, (), reason=ReasonCode.SUPPRESSED
        )
    if not seen.publisher_open:
        owner = "publisher outside its hours"
        return PingPlan(
            verdicts, None, "Publisher closed", owner, (), reason=ReasonCode.PUBLISHER_CLOSED
        )
    if inbound is None and not pool:
        missing = "pool number" if caller is None else "tracking number"
        owner = f"campaign has no {missing} for this ping"
        return PingPlan(verdicts, None, None, owner, (), reason=ReasonCode.NO_TRACKING_NUMBER)
    candidates = tuple(
        memo.candidate(t, stamp, now, seen.payouts) for t in order_by_priority(seen.eligible, rng)
    )
    order = ReserveOrder(
        namespace=namespace(campaign.company_id),
        uuid=uuid,
        now=stamp,
        expires_at=stamp + key.ttl_seconds,
        hold=key.count_on_reserved,
        caller_number=caller,
        inbound_number=inbound,
        pool=pool,
        rate=_rate_rule(key, request),
        shield_key=_shield_key(key, caller),
        seen_key=f"seen:{campaign.id}:{caller}" if caller and seen.seen_ttl > 0 else None,
        seen_ttl=seen.seen_ttl,
        publisher=memo.publisher_subject(publisher, stamp, now),
        options=seen.options,
        candidates=candidates,
    )
    return PingPlan(verdicts, order, None, None, seen.criteria)


def assess(
    campaign: Campaign, publisher: Publisher, request: PingRequest, now: datetime
) -> Assessment:
    """The configuration-only part of a ping's plan (pure; memoised by `PlanMemo`)."""
    criteria = matching_criteria(campaign.criteria, request)
    verdicts = tuple(evaluate_target(t, request, now) for t in campaign.targets)
    eligible = tuple(
        t for t, v in zip(campaign.targets, verdicts, strict=True) if v.outcome == Outcome.ELIGIBLE
    )
    options = payout_options(criteria)
    payouts = tuple(payout_for(c, bid=None) for c in criteria) or (0.0,)
    seen_ttl = max([t.dedupe_seconds for t in campaign.targets] + [o.window for o in options])
    return Assessment(
        verdicts=verdicts,
        eligible=eligible,
        criteria=tuple(c.id for c in criteria),
        options=options,
        payouts=payouts,
        publisher_open=is_open(publisher.schedule, now),
        seen_ttl=seen_ttl,
    )


def evaluate_target(target: Target, request: PingRequest, now: datetime) -> Verdict:
    """The target's outcome from configuration alone; caps and duplicates are the hot state's."""
    return Verdict(target.id, target.name, _static_outcome(target, request, now))


def _static_outcome(target: Target, request: PingRequest, now: datetime) -> str:
    if target.paused:
        return Outcome.PAUSED
    if not is_open(target.schedule, now):
        return Outcome.CLOSED
    failing = first_failing(target.rules, request.tags)
    if failing is not None:
        return f"filtered:{failing.describe()}"
    listed = target.caller_list
    if listed is not None:
        on_list = request.caller_number in listed.numbers
        if on_list == (listed.kind is ListKind.BLOCK):
            return Outcome.CALLER_LIST
    return Outcome.ELIGIBLE


def order_by_priority(targets: Sequence[Target], rng: Random) -> list[Target]:
    """Lower priority first; within a priority a weighted random order, so each target leads
    its tier with probability weight / total weight (Efraimidis-Spirakis keys)."""
    keyed = [(t.priority, -(rng.random() ** (1.0 / t.weight)), t.id, t) for t in targets]
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]


def matching_criteria(
    criteria: tuple[ConversionCriterion, ...], request: PingRequest
) -> list[ConversionCriterion]:
    """Criteria that pay this publisher for this request's tags, in configured order."""
    return [
        c
        for c in criteria
        if (c.publisher_id is None or c.publisher_id == request.publisher_id)
        and first_failing(c.rules, request.tags) is None
    ]


def payout_options(criteria: list[ConversionCriterion]) -> tuple[PayoutOption, ...]:
    """One option per matching criterion; a publisher no criterion pays is offered 0."""
    if not criteria:
        return (PayoutOption(None, 0, 0, 0.0),)
    return tuple(
        PayoutOption(c.id, c.dedupe_seconds, c.buffer_seconds, c.revenue) for c in criteria
    )


def payout_for(criterion: ConversionCriterion, *, bid: float | None) -> float | None:
    """The publisher's payout: fixed, or its share of the winning bid (None without a bid)."""
    if criterion.payout_kind is PayoutKind.FIXED:
        return criterion.payout
    if bid is None:
        return None
    return round(bid * criterion.payout / 100.0, 4)


def choose_inbound(
    campaign: Campaign, key: RtbKey, request: PingRequest
) -> tuple[str | None, tuple[str, ...]]:
    """(shared inbound number, numbers to take one of exclusively).

    Order: the ping's `inbound_number`, the key's fixed number, a pool number when the ping has
    no caller number, else the campaign's first tracking number. Without a caller number a call
    can only be matched by the number it dials, so that number is always taken exclusively.
    """
    wanted = request.inbound_number or key.inbound_number
    caller = request.caller_number
    if wanted is not None:
        if request.inbound_number is not None and wanted not in campaign.all_numbers:
            raise InvalidInput("inbound_number is not a tracking number of this campaign")
        if wanted in campaign.pool_numbers or caller is None:
            return None, (wanted,)
        return wanted, ()
    if caller is None or not campaign.numbers:
        return None, campaign.pool_numbers
    return campaign.numbers[0], ()


def _rate_rule(key: RtbKey, request: PingRequest) -> RateRule | None:
    if key.rate_per_second is None:
        return None
    return RateRule(f"rl:{key.key}:{request.publisher_id}", key.rate_per_second, key.rate_burst)


def _shield_key(key: RtbKey, caller: str | None) -> str | None:
    if caller is None or key.shield_scope is ShieldScope.OFF:
        return None
    if key.shield_scope is ShieldScope.CAMPAIGN:
        return f"shield:c{key.campaign_id}:{caller}"
    return f"shield:k{key.key}:{caller}"


def conclude(plan: PingPlan, result: ReserveResult | None) -> Decision:
    """The decision for a planned ping once the hot state answered (None: it was not asked)."""
    if result is None:
        status = PingStatus.REJECTED if plan.rejection else PingStatus.NO_TARGET
        log = _log_rows(plan, {}, None)
        reason = plan.reason or _reason_of_log(log)
        return Decision(status, plan.rejection, plan.owner_info, None, log, reason_code=reason)
    blocked = dict(result.blocked)
    winner = result.record.target_id if result.record else None
    log = _log_rows(plan, blocked, winner, UNTRIED.get(result.status, Outcome.NOT_REACHED))
    if result.status is ReserveStatus.RESERVED:
        assert winner is not None
        destination = plan.destinations.get(winner)
        return Decision(PingStatus.RESERVED, None, None, result.record, log, destination)
    if result.status in PUBLIC_INFO:
        info = PUBLIC_INFO[result.status]
        reason = OF_STATUS[result.status]
        return Decision(PingStatus.REJECTED, info, info.lower(), None, log, reason_code=reason)
    owner = "no free pool number" if result.status is ReserveStatus.NO_POOL_NUMBER else None
    if owner is None and plan.replies:
        owner = "no buyer accepted and had capacity"
    owner = owner or "no eligible target had capacity"
    reason = OF_STATUS.get(result.status) or _reason_of_log(log)
    return Decision(PingStatus.NO_TARGET, None, owner, None, log, reason_code=reason)


def _reason_of_log(log: tuple[LogRow, ...]) -> ReasonCode:
    """The code of the target that got furthest; the campaign passthrough's own row speaks
    through the targets it stood for."""
    return reason_of_targets((r.outcome, r.ping) for r in log if r.target_id is not None)


def _log_rows(
    plan: PingPlan, blocked: dict[int, str], winner: int | None, untried: str = Outcome.NOT_REACHED
) -> tuple[LogRow, ...]:
    replies = {r.target_id: r for r in plan.replies}
    skipped = dict(plan.skipped)
    accepted_untried = Outcome.OUTBID if plan.by_bid and winner is not None else untried
    rows = []
    for position, verdict in enumerate(plan.verdicts):
        outcome, target_id = verdict.outcome, verdict.target_id
        if outcome == Outcome.ELIGIBLE:
            if target_id == winner:
                outcome = Outcome.SELECTED
            elif target_id in skipped:
                outcome = skipped[target_id]
            elif target_id in blocked:
                outcome = blocked[target_id]
            elif target_id in replies:
                outcome = accepted_untried
            else:
                outcome = untried
        rows.append(
            LogRow(position, target_id, verdict.target_name, outcome, replies.get(target_id))
        )
    gate = replies.get(None)
    if gate is not None:
        rows.append(LogRow(len(rows), None, "campaign passthrough", f"ping_{gate.outcome}", gate))
    return tuple(rows)
