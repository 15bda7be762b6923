"""Reason codes: one per way a ping is refused, the furthest target's when each was refused."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbid.domain.buyers import BuyerReply, ReplyOutcome
from callbid.domain.decide import Outcome, PingStatus, conclude
from callbid.domain.model import (
    CallerList,
    Caps,
    ConversionCriterion,
    ListKind,
    PayoutKind,
    Publisher,
    Target,
)
from callbid.domain.reasons import (
    OF_STATUS,
    STAGES,
    ReasonCode,
    reason_of_targets,
    target_stage,
)
from callbid.domain.reserve import ReserveResult, ReserveStatus
from callbid.hotstate.memory import MemoryHotState
from tests.unit.test_decide import (
    CALLER,
    CLOSED_NOW,
    FAST,
    STAMP,
    STATE_RULE,
    campaign,
    ping,
    plan,
    record,
    target,
)

CAPPED = Caps(concurrency=0)
REVSHARE = ConversionCriterion(1, payout_kind=PayoutKind.REVSHARE, payout=50.0)


def reason_of(*targets: Target, result: ReserveResult | None = None, **kw: object) -> str | None:
    """The code of a two-step ping: plan, then the given hot-state answer (or the in-process
    store's own when none is given)."""
    p = plan(campaign(*targets, **kw), ping(caller_state="TX"))
    if result is None and p.order is not None:
        result = MemoryHotState().reserve_now(p.order)
    return conclude(p, result).reason_code


def reply(target_id: int | None, outcome: ReplyOutcome) -> BuyerReply:
    return BuyerReply(target_id, outcome)


# --- one test per code ------------------------------------------------------------------------


def test_suppressed() -> None:
    assert reason_of(target(1), blocked_callers=frozenset({CALLER})) == ReasonCode.SUPPRESSED


def test_publisher_closed() -> None:
    p = plan(campaign(target(1)), publisher=Publisher("PUB1", schedule=CLOSED_NOW))
    decision = conclude(p, None)
    assert (decision.status, decision.reason_code) == (
        PingStatus.REJECTED,
        ReasonCode.PUBLISHER_CLOSED,
    )


def test_no_tracking_number() -> None:
    decision = conclude(plan(campaign(target(1), numbers=())), None)
    assert (decision.status, decision.reason_code) == (
        PingStatus.NO_TARGET,
        ReasonCode.NO_TRACKING_NUMBER,
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (ReserveStatus.DUPLICATE, ReasonCode.DUPLICATE_CALLER),
        (ReserveStatus.PUBLISHER_CAPPED, ReasonCode.PUBLISHER_CAPPED),
        (ReserveStatus.UNPRICED, ReasonCode.PAYOUT_UNDETERMINABLE),
        (ReserveStatus.NO_POOL_NUMBER, ReasonCode.POOL_EXHAUSTED),
    ],
)
def test_request_wide_refusals_of_the_hot_state(status: ReserveStatus, code: ReasonCode) -> None:
    # The blocked target does not matter: the whole request was refused.
    result = ReserveResult(status, blocked=((1, "capped:daily"),))
    assert reason_of(target(1), target(2), result=result) == code


def test_unpriced_revshare_through_the_store() -> None:
    assert reason_of(target(1), criteria=(REVSHARE,)) == ReasonCode.PAYOUT_UNDETERMINABLE


def test_no_buyer_open() -> None:
    assert reason_of(target(1, paused=True), target(2, schedule=CLOSED_NOW)) == "no_buyer_open"


def test_a_campaign_without_targets_has_no_buyer_open() -> None:
    assert reason_of() == ReasonCode.NO_BUYER_OPEN


def test_filtered_by_tags_or_caller_list() -> None:
    blocked = CallerList(ListKind.BLOCK, frozenset({CALLER}))
    assert reason_of(target(1, rules=(STATE_RULE,)), target(2, paused=True)) == "filtered"
    assert reason_of(target(1, caller_list=blocked)) == ReasonCode.FILTERED


def test_target_dedupe_is_a_duplicate_caller() -> None:
    result = ReserveResult(ReserveStatus.NO_TARGET, blocked=((1, Outcome.DUPLICATE),))
    assert reason_of(target(1, dedupe_seconds=60), result=result) == "duplicate_caller"


def test_capped_through_the_store() -> None:
    assert reason_of(target(1, caps=CAPPED), target(2, paused=True)) == ReasonCode.CAPPED


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        ([ReplyOutcome.ERROR], ReasonCode.BUYERS_FAILED),
        ([ReplyOutcome.SKIPPED], ReasonCode.BUYERS_FAILED),
        ([ReplyOutcome.TIMEOUT], ReasonCode.BUYERS_TIMED_OUT),
        ([ReplyOutcome.ERROR, ReplyOutcome.TIMEOUT], ReasonCode.BUYERS_TIMED_OUT),
        ([ReplyOutcome.DECLINED], ReasonCode.BUYERS_DECLINED),
        ([ReplyOutcome.TIMEOUT, ReplyOutcome.DECLINED], ReasonCode.BUYERS_DECLINED),
    ],
)
def test_buyers_answers(outcomes: list[ReplyOutcome], code: ReasonCode) -> None:
    targets = [target(i + 1) for i in range(len(outcomes))]
    p = plan(campaign(*targets, target(9, caps=CAPPED)))
    replies = tuple(reply(i + 1, o) for i, o in enumerate(outcomes))
    skipped = (*((i + 1, f"ping_{o}") for i, o in enumerate(outcomes)), (9, "capped:x"))
    p = replace(p, replies=replies, skipped=skipped)
    decision = conclude(p, ReserveResult(ReserveStatus.NO_TARGET))
    assert (decision.status, decision.reason_code) == (PingStatus.NO_TARGET, code)


def test_capped_after_its_buyer_accepted_outranks_a_refusal() -> None:
    p = plan(campaign(target(1), target(2)))
    replies = (reply(1, ReplyOutcome.ACCEPTED), reply(2, ReplyOutcome.DECLINED))
    p = replace(p, replies=replies, skipped=((2, "ping_declined"),))
    result = ReserveResult(ReserveStatus.NO_TARGET, blocked=((1, "capped:concurrency"),))
    assert conclude(p, result).reason_code == ReasonCode.CAPPED


def test_a_campaign_passthrough_row_speaks_through_its_targets() -> None:
    p = plan(campaign(target(1)))
    gate = reply(None, ReplyOutcome.DECLINED)
    p = replace(p, replies=(gate,), skipped=((1, "ping_declined"),))
    assert conclude(p, ReserveResult(ReserveStatus.NO_TARGET)).reason_code == "buyers_declined"


def test_reserved_and_shielded_have_no_code() -> None:
    p = plan(campaign(target(1)))
    assert conclude(p, ReserveResult(ReserveStatus.RESERVED, record(1))).reason_code is None
    assert reason_of(target(1)) is None


# --- the table ---------------------------------------------------------------------------------


def test_precedence_follows_the_pipeline() -> None:
    rows = [("paused", None), ("filtered:age equals 3", None), ("capped:daily", None)]
    assert reason_of_targets(rows) == ReasonCode.CAPPED
    assert reason_of_targets(rows[:2]) == ReasonCode.FILTERED
    assert reason_of_targets([("not_reached", None), ("closed", None)]) == "no_buyer_open"
    ordered = [
        target_stage(pattern + ("x" if pattern.endswith(":") else "")) for pattern, _ in STAGES
    ]
    assert ordered == list(range(len(STAGES)))


def test_every_refusing_outcome_of_the_log_has_a_stage() -> None:
    refusing = {Outcome.PAUSED, Outcome.CLOSED, Outcome.CALLER_LIST, Outcome.DUPLICATE}
    for outcome in Outcome:
        assert (target_stage(outcome) is not None) == (outcome in refusing), outcome
    for ping_outcome in ReplyOutcome:
        if ping_outcome is not ReplyOutcome.ACCEPTED:
            assert target_stage(f"ping_{ping_outcome}") is not None


def test_codes_are_stable_snake_case() -> None:
    assert all(code.value.isidentifier() and code.value.islower() for code in ReasonCode)
    assert set(OF_STATUS.values()) <= set(ReasonCode)


# --- invariant ---------------------------------------------------------------------------------

TARGET_SETUPS = st.sampled_from(["open", "paused", "closed", "filtered", "listed", "capped"])


def built_target(target_id: int, setup: str) -> Target:
    fields: dict[str, object] = {
        "paused": {"paused": True},
        "closed": {"schedule": CLOSED_NOW},
        "filtered": {"rules": (STATE_RULE,)},
        "listed": {"caller_list": CallerList(ListKind.BLOCK, frozenset({CALLER}))},
        "capped": {"caps": CAPPED},
    }.get(setup, {})
    return target(target_id, **fields)


@FAST
@given(
    setups=st.lists(TARGET_SETUPS, max_size=5),
    suppressed=st.booleans(),
    no_number=st.booleans(),
    revshare=st.booleans(),
    pings=st.integers(min_value=1, max_value=3),
)
def test_every_refusal_has_a_code_and_reservations_have_none(
    setups: list[str], suppressed: bool, no_number: bool, revshare: bool, pings: int
) -> None:
    targets = [built_target(i + 1, s) for i, s in enumerate(setups)]
    extra: dict[str, object] = {"criteria": (REVSHARE,)} if revshare else {}
    if suppressed:
        extra["blocked_callers"] = frozenset({CALLER})
    if no_number:
        extra["numbers"] = ()
    camp = campaign(*targets, **extra)
    store = MemoryHotState()
    for n in range(pings):
        p = plan(camp, ping(caller_state="TX"), seed=n)
        p = replace(p, order=replace(p.order, uuid=f"r-{n}", now=STAMP + n)) if p.order else p
        result = store.reserve_now(p.order) if p.order is not None else None
        if result is not None and result.status is ReserveStatus.SHIELDED:
            continue
        decision = conclude(p, result)
        refused = decision.status in (PingStatus.REJECTED, PingStatus.NO_TARGET)
        assert refused == (decision.reason_code is not None)
        if decision.reason_code is not None:
            assert decision.reason_code in set(ReasonCode)
        outcomes = {r.outcome for r in decision.log}
        if decision.reason_code == ReasonCode.NO_BUYER_OPEN:
            assert outcomes <= {"paused", "closed"}
        if decision.reason_code == ReasonCode.FILTERED:
            assert all(o in ("paused", "closed") or o.startswith("filtered:") for o in outcomes)
        if decision.reason_code == ReasonCode.CAPPED:
            assert any(o.startswith("capped:") for o in outcomes)
