"""Live bids in the decision core: who is pinged, route by bid, revshare, numbers, the log."""

from __future__ import annotations

from datetime import UTC, datetime
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbid.domain.bidding import apply_bids, buyers_to_ping, needs_buyers
from callbid.domain.buyers import (
    BuyerReply,
    NumberMode,
    Passthrough,
    ReplyOutcome,
    ResponseMapping,
)
from callbid.domain.decide import Outcome, PingPlan, PingStatus, conclude, plan_ping
from callbid.domain.model import (
    Campaign,
    ConversionCriterion,
    PayoutKind,
    PingRequest,
    Publisher,
    RoutingStrategy,
    RtbKey,
    Target,
)
from callbid.domain.reserve import LiveReservation, ReserveResult, ReserveStatus

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
CALLER = "+13035551234"
TRACKING = "+18005550100"


def api(mode: NumberMode = NumberMode.TRANSFER) -> Passthrough:
    return Passthrough("https://buyer.example/bid", ResponseMapping(bid="bid"), number_mode=mode)


def campaign(
    *targets: Target,
    strategy: RoutingStrategy = RoutingStrategy.PRIORITY,
    criteria: tuple[ConversionCriterion, ...] = (ConversionCriterion(1, payout=5.0),),
    gate: Passthrough | None = None,
) -> Campaign:
    return Campaign(
        id=3,
        company_id=1,
        name="c",
        strategy=strategy,
        numbers=(TRACKING,),
        targets=targets,
        criteria=criteria,
        passthrough=gate,
    )


def planned(camp: Campaign) -> PingPlan:
    key = RtbKey("k", 1, camp.id)
    request = PingRequest("k", "pub1", CALLER, None, {"caller_zip": "80301"})
    return plan_ping(camp, key, Publisher("pub1"), request, uuid="u1", now=NOW, rng=Random(1))


def accepted(target_id: int | None, bid: float | None = None, **kw: object) -> BuyerReply:
    return BuyerReply(
        target_id, ReplyOutcome.ACCEPTED, latency_ms=20.0, http_status=200, bid=bid, **kw
    )  # type: ignore[arg-type]


def order_ids(plan: PingPlan) -> list[int]:
    assert plan.order is not None
    return [c.target_id for c in plan.order.candidates]


def won(plan: PingPlan, target_id: int) -> ReserveResult:
    """The hot state's answer when `target_id` got the reservation."""
    assert plan.order is not None
    candidate = next(c for c in plan.order.candidates if c.target_id == target_id)
    record = LiveReservation(
        "u1",
        target_id,
        candidate.inbound_number or TRACKING,
        CALLER,
        candidate.payouts[0] or 0.0,
        candidate.seconds or 0,
        candidate.revenue or 0.0,
        1,
        0.0,
        False,
        (),
        None,
        None,
    )
    return ReserveResult(ReserveStatus.RESERVED, record)


# --- who is asked ---------------------------------------------------------------------------


def test_a_campaign_without_passthroughs_needs_no_buyers() -> None:
    assert not needs_buyers(campaign(Target(1, "a", "+13125550001")), planned(campaign()))
    camp = campaign(Target(1, "a", "+13125550001"))
    assert not needs_buyers(camp, planned(camp))


def test_only_candidates_with_capacity_and_an_api_are_pinged_then_the_gate() -> None:
    camp = campaign(
        Target(1, "a", "+13125550001", passthrough=api()),
        Target(2, "b", "+13125550002", passthrough=api(), priority=2),
        Target(3, "static", "+13125550003", priority=3),
        Target(4, "paused", "+13125550004", passthrough=api(), paused=True),
        gate=api(),
    )
    plan = planned(camp)

    assert needs_buyers(camp, plan)
    asked = buyers_to_ping(camp, plan, blocked=[2])
    assert [target_id for target_id, _ in asked] == [1, None]


def test_the_gate_is_not_asked_when_every_remaining_candidate_has_its_own_api() -> None:
    camp = campaign(Target(1, "a", "+13125550001", passthrough=api()), gate=api())

    assert [t for t, _ in buyers_to_ping(camp, planned(camp), blocked=[])] == [1]


# --- route by bid ---------------------------------------------------------------------------


def test_route_by_bid_orders_by_bid_then_priority_and_drops_the_refusals() -> None:
    camp = campaign(
        Target(1, "cheap", "+13125550001", passthrough=api(), priority=1),
        Target(2, "rich", "+13125550002", passthrough=api(), priority=2),
        Target(3, "tie-low-priority", "+13125550003", passthrough=api(), priority=3),
        Target(4, "declines", "+13125550004", passthrough=api()),
        Target(5, "times-out", "+13125550005", passthrough=api()),
        Target(6, "static", "+13125550006", bid=15.0, priority=4),
        Target(7, "no-bid", "+13125550007", priority=1),
        strategy=RoutingStrategy.BID,
    )
    replies = [
        accepted(1, 10.0),
        accepted(2, 30.0),
        accepted(3, 30.0),
        BuyerReply(4, ReplyOutcome.DECLINED, detail="no capacity"),
        BuyerReply(5, ReplyOutcome.TIMEOUT, detail="deadline"),
    ]

    plan = apply_bids(camp, planned(camp), [], replies)

    assert order_ids(plan) == [2, 3, 6, 1, 7]
    assert dict(plan.skipped) == {4: "ping_declined", 5: "ping_timeout"}
    assert plan.order is not None
    assert plan.order.rate is None
    assert not plan.order.probe


def test_priority_routing_keeps_the_priority_order_whatever_the_bids() -> None:
    camp = campaign(
        Target(1, "first", "+13125550001", passthrough=api(), priority=1),
        Target(2, "second", "+13125550002", passthrough=api(), priority=2),
    )

    plan = apply_bids(camp, planned(camp), [], [accepted(1, 1.0), accepted(2, 99.0)])

    assert order_ids(plan) == [1, 2]


@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=8))
def test_route_by_bid_puts_the_highest_bid_first(bids: list[float]) -> None:
    targets = tuple(
        Target(i + 1, f"t{i}", f"+1312555{i:04d}", passthrough=api()) for i in range(len(bids))
    )
    camp = campaign(*targets, strategy=RoutingStrategy.BID)
    replies = [accepted(i + 1, bid) for i, bid in enumerate(bids)]

    plan = apply_bids(camp, planned(camp), [], replies)

    assert plan.order is not None
    got = [c.revenue for c in plan.order.candidates]
    assert got == sorted(bids, reverse=True)


# --- payouts and numbers --------------------------------------------------------------------


def test_revshare_pays_the_share_of_the_winning_bid_and_fixed_stays_fixed() -> None:
    criteria = (
        ConversionCriterion(1, publisher_id="pub1", payout_kind=PayoutKind.REVSHARE, payout=40.0),
        ConversionCriterion(2, payout=5.0),
    )
    camp = campaign(
        Target(1, "a", "+13125550001", passthrough=api()),
        strategy=RoutingStrategy.BID,
        criteria=criteria,
    )
    plan = planned(camp)
    assert plan.order is not None
    assert plan.order.candidates[0].payouts == (None, 5.0)  # revshare unknown before the bid

    plan = apply_bids(camp, plan, [], [accepted(1, 25.0, seconds=90)])

    assert plan.order is not None
    bid = plan.order.candidates[0]
    assert bid.payouts == (10.0, 5.0)
    assert (bid.revenue, bid.seconds) == (25.0, 90)


def test_revshare_without_a_bid_stays_unpriced() -> None:
    criteria = (ConversionCriterion(1, payout_kind=PayoutKind.REVSHARE, payout=50.0),)
    camp = campaign(Target(1, "a", "+13125550001", passthrough=api()), criteria=criteria)

    plan = apply_bids(camp, planned(camp), [], [accepted(1, None)])

    assert plan.order is not None
    assert plan.order.candidates[0].payouts == (None,)


def test_transfer_mode_gives_the_publisher_the_buyers_number() -> None:
    camp = campaign(Target(1, "a", "+13125550001", passthrough=api()))

    plan = apply_bids(camp, planned(camp), [], [accepted(1, 5.0, number="+18885551111")])

    assert plan.order is not None
    assert plan.order.candidates[0].inbound_number == "+18885551111"
    assert plan.destinations == {}


def test_dial_mode_keeps_the_tracking_number_and_dials_the_buyers_number() -> None:
    camp = campaign(Target(1, "chain", "+13125550001", passthrough=api(NumberMode.DIAL)))
    plan = apply_bids(camp, planned(camp), [], [accepted(1, 5.0, number="+18885551111")])

    assert plan.order is not None
    assert plan.order.candidates[0].inbound_number is None
    decision = conclude(plan, won(plan, 1))
    assert decision.destination == "+18885551111"
    assert decision.record is not None
    assert decision.record.inbound_number == TRACKING


def test_the_gate_decides_for_targets_without_their_own_api() -> None:
    camp = campaign(
        Target(1, "own", "+13125550001", passthrough=api()),
        Target(2, "gated", "+13125550002"),
        gate=api(),
    )
    declined = BuyerReply(None, ReplyOutcome.DECLINED, detail="closed")

    plan = apply_bids(camp, planned(camp), [], [accepted(1, 3.0), declined])

    assert order_ids(plan) == [1]
    assert dict(plan.skipped) == {2: "ping_declined"}


# --- the decision log -----------------------------------------------------------------------


def test_log_shows_each_buyers_answer_and_outcome() -> None:
    camp = campaign(
        Target(1, "rich", "+13125550001", passthrough=api()),
        Target(2, "poor", "+13125550002", passthrough=api()),
        Target(3, "broken", "+13125550003", passthrough=api()),
        Target(4, "full", "+13125550004", passthrough=api()),
        strategy=RoutingStrategy.BID,
    )
    error = BuyerReply(3, ReplyOutcome.ERROR, http_status=500, detail="http 500", body="oops")
    replies = [accepted(1, 20.0), accepted(2, 10.0), error]
    plan = apply_bids(camp, planned(camp), [(4, "capped:concurrency")], replies)

    decision = conclude(plan, won(plan, 1))

    outcomes = {row.target_id: row.outcome for row in decision.log}
    assert outcomes == {
        1: Outcome.SELECTED,
        2: Outcome.OUTBID,
        3: "ping_error",
        4: "capped:concurrency",
    }
    rows = {row.target_id: row for row in decision.log}
    assert rows[3].ping == error
    assert rows[1].ping is not None
    assert rows[1].ping.bid == 20.0
    assert rows[4].ping is None


def test_nobody_accepting_is_no_target_with_the_reason_for_the_owner() -> None:
    camp = campaign(Target(1, "a", "+13125550001", passthrough=api()), gate=None)
    plan = apply_bids(camp, planned(camp), [], [BuyerReply(1, ReplyOutcome.DECLINED)])

    decision = conclude(plan, ReserveResult(ReserveStatus.NO_TARGET))

    assert decision.status is PingStatus.NO_TARGET
    assert decision.owner_info == "no buyer accepted and had capacity"
    assert [row.outcome for row in decision.log] == ["ping_declined"]


def test_the_gates_answer_is_its_own_log_row() -> None:
    camp = campaign(Target(1, "gated", "+13125550001"), gate=api())
    gate = accepted(None, 7.0)
    plan = apply_bids(camp, planned(camp), [], [gate])

    decision = conclude(plan, won(plan, 1))

    assert [(r.target_id, r.outcome) for r in decision.log] == [
        (1, Outcome.SELECTED),
        (None, "ping_accepted"),
    ]
    assert decision.log[-1].ping == gate


@pytest.mark.parametrize("outcome", list(ReplyOutcome))
def test_every_refusal_has_a_log_outcome(outcome: ReplyOutcome) -> None:
    camp = campaign(Target(1, "a", "+13125550001", passthrough=api()))
    plan = apply_bids(camp, planned(camp), [], [BuyerReply(1, outcome)])

    if outcome is ReplyOutcome.ACCEPTED:
        assert order_ids(plan) == [1]
    else:
        assert dict(plan.skipped) == {1: f"ping_{outcome}"}
