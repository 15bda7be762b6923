"""The pure parts of a replay: stored buyer replies, unpinged buyers, the order, the rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from random import Random
from typing import Any

from callbid.domain.bidding import apply_bids, buyers_to_ping
from callbid.domain.buyers import BuyerReply, Passthrough, ReplyOutcome, ResponseMapping
from callbid.domain.decide import conclude, plan_ping
from callbid.domain.model import (
    Campaign,
    ConversionCriterion,
    PingRequest,
    Publisher,
    RtbKey,
    Target,
)
from callbid.domain.replay import (
    NOT_PINGED,
    WOULD_PING,
    ReplayRow,
    compare_logs,
    is_own_sighting,
    mark_unpinged,
    named_inbound,
    replay_order,
    replay_uuid,
    stored_replies,
)
from callbid.domain.reserve import RateRule, ReserveResult, ReserveStatus

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
CALLER = "+13035551234"
TRACKING = "+18005550100"
POOL = "+18005550200"
API = Passthrough("https://buyer.example/bid", ResponseMapping(bid="bid"))


def campaign(*targets: Target, gate: Passthrough | None = None) -> Campaign:
    return Campaign(
        id=3,
        company_id=1,
        name="c",
        numbers=(TRACKING,),
        pool_numbers=(POOL,),
        targets=targets,
        criteria=(ConversionCriterion(1, payout=5.0),),
        passthrough=gate,
    )


def entry(
    target_id: int | None, outcome: str, reply: str | None = None, **ping: Any
) -> dict[str, Any]:
    """A stored decision log row; with `reply` or `ping` fields, its buyer's stored answer."""
    row: dict[str, Any] = {"target_id": target_id, "target_name": f"t{target_id}"}
    row["outcome"] = outcome
    if reply or ping:
        row["ping"] = {"outcome": reply or "accepted", "latency_ms": 3.0, **ping}
    return row


def test_a_buyer_the_original_asked_answers_as_it_did() -> None:
    log = [entry(1, "selected", bid=30.0, seconds=90, number="+13125550000"), entry(2, "closed")]

    (reply,) = stored_replies(log, [1])

    assert reply == BuyerReply(
        1, ReplyOutcome.ACCEPTED, latency_ms=3.0, bid=30.0, number="+13125550000", seconds=90
    )


def test_a_buyer_the_original_did_not_ask_is_not_pinged() -> None:
    log = [entry(1, "selected", bid=30.0), entry(None, "ping_declined", "declined")]

    replies = stored_replies(log, [2, None])

    assert replies[0] == BuyerReply(2, ReplyOutcome.SKIPPED, detail=NOT_PINGED)
    assert replies[1].outcome is ReplyOutcome.DECLINED


def test_unpinged_buyers_show_would_ping_and_leave_the_order() -> None:
    asked, known = (
        Target(1, "asked", "+1", passthrough=API),
        Target(2, "new", "+1", passthrough=API),
    )
    camp = campaign(asked, known, Target(3, "gated", "+1", priority=2), gate=API)
    request = PingRequest("k", "p", CALLER, None, {})
    key = RtbKey("k", 1, 3)
    plan = plan_ping(camp, key, Publisher("p"), request, uuid="u", now=NOW, rng=Random(1))
    asked_ids = [t for t, _ in buyers_to_ping(camp, plan, ())]
    replies = stored_replies([entry(1, "selected", bid=3.0)], asked_ids)
    plan = apply_bids(camp, plan, (), replies)
    assert plan.order is not None
    assert [c.target_id for c in plan.order.candidates] == [1]

    log = mark_unpinged(conclude(plan, None).log, camp, plan.replies)

    outcomes = {row.target_id: (row.outcome, row.ping) for row in log}
    assert outcomes[2] == (WOULD_PING, None)
    assert outcomes[3] == (WOULD_PING, None)
    assert outcomes[None] == (WOULD_PING, None)
    assert outcomes[1][0] != WOULD_PING


def test_a_buyer_that_skipped_originally_stays_skipped() -> None:
    camp = campaign(Target(1, "a", "+1", passthrough=API))
    replies = stored_replies([entry(1, "ping_skipped", "skipped", detail="circuit open")], [1])
    plan = plan_ping(
        camp,
        RtbKey("k", 1, 3),
        Publisher("p"),
        PingRequest("k", "p", CALLER, None, {}),
        uuid="u",
        now=NOW,
        rng=Random(1),
    )
    plan = apply_bids(camp, plan, (), replies)

    log = mark_unpinged(conclude(plan, None).log, camp, plan.replies)

    assert log[0].outcome == "ping_skipped"


def test_the_replay_order_has_its_own_uuid_and_no_rate() -> None:
    camp = campaign(Target(1, "a", "+1"))
    key = RtbKey("k", 1, 3, rate_per_second=1.0)
    request = PingRequest("k", "p", CALLER, None, {})
    plan = plan_ping(camp, key, Publisher("p"), request, uuid="u1", now=NOW, rng=Random(1))
    assert plan.order is not None
    assert isinstance(plan.order.rate, RateRule)
    shield = plan.order.shield_key
    assert shield is not None

    order = replay_order(plan.order, "u1", None)
    own = replay_order(plan.order, "u1", shield)
    other = replay_order(plan.order, "u1", "shield:kother:" + CALLER)

    assert order.uuid == replay_uuid("u1") != "u1"
    assert order.rate is None
    assert order.shield_key == other.shield_key == shield
    assert own.shield_key is None
    assert replace(own, shield_key=shield) == order


def test_only_the_originals_own_sighting_is_left_out() -> None:
    created = NOW.timestamp()

    assert is_own_sighting(created, created, reserved=True)
    assert not is_own_sighting(created, created, reserved=False)
    assert not is_own_sighting(created + 5, created, reserved=True)
    assert not is_own_sighting(None, created, reserved=True)


def test_a_shared_tracking_number_is_replayed_and_a_pool_number_is_not() -> None:
    camp = campaign()

    assert named_inbound(TRACKING, None, camp) == TRACKING
    assert named_inbound(POOL, POOL, camp) is None
    assert named_inbound("+13125550000", None, camp) is None
    assert named_inbound(None, None, camp) is None


def test_rows_cover_both_logs_in_the_replays_order() -> None:
    before = [entry(1, "selected"), entry(2, "not_reached"), entry(4, "closed")]
    after = [entry(2, "selected"), entry(1, "closed"), entry(3, "eligible")]
    after.append(entry(None, WOULD_PING))

    rows = compare_logs(before, after)

    assert rows == (
        ReplayRow(2, "t2", "not_reached", "selected"),
        ReplayRow(1, "t1", "selected", "closed"),
        ReplayRow(3, "t3", None, "eligible"),
        ReplayRow(4, "t4", "closed", None),
        ReplayRow(None, "tNone", None, WOULD_PING),
    )
    assert [row.changed for row in rows] == [True, True, True, True, True]
    assert not compare_logs(before, before)[0].changed


def test_a_no_target_result_leaves_rows_unmarked_without_unpinged_buyers() -> None:
    camp = campaign(Target(1, "a", "+1"))
    request = PingRequest("k", "p", CALLER, None, {})
    plan = plan_ping(
        camp, RtbKey("k", 1, 3), Publisher("p"), request, uuid="u", now=NOW, rng=Random(1)
    )
    log = conclude(plan, ReserveResult(ReserveStatus.NO_TARGET, blocked=((1, "capped:daily"),))).log

    assert mark_unpinged(log, camp, ()) is log
