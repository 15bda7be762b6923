"""Where a call goes (`domain.routing.plan_call`) and why a call missed its reservation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

from callbid.adapters.storage.tables import Reservation
from callbid.domain.model import (
    Campaign,
    FilterOp,
    PingRequest,
    RoutingStrategy,
    TagRule,
    Target,
)
from callbid.domain.routing import CallPlan, plan_call
from callbid.service.calls import Match, explain_miss

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
CALLER = "+12125550123"


def campaign(*targets: Target, strategy: RoutingStrategy = RoutingStrategy.PRIORITY) -> Campaign:
    return Campaign(1, 1, "c", strategy=strategy, targets=targets)


def request(**tags: str) -> PingRequest:
    return PingRequest("", "", CALLER, "+18885550100", dict(tags))


def legs(plan: CallPlan) -> list[int]:
    return [leg.target_id for leg in plan.legs]


def test_unmatched_call_follows_priority_and_skips_the_ineligible() -> None:
    targets = (
        Target(1, "second", "+13125550001", priority=2),
        Target(2, "paused", "+13125550002", paused=True),
        Target(3, "first", "+13125550003", priority=1, ring_timeout=12),
        Target(
            4, "ny only", "+13125550004", rules=(TagRule("caller_state", FilterOp.EQUALS, ("NY",)),)
        ),
    )

    plan = plan_call(campaign(*targets), request(caller_state="CA"), now=NOW, rng=Random(1))

    assert legs(plan) == [3, 1]
    assert plan.legs[0].ring_timeout == 12
    outcomes = {v.target_id: v.outcome for v in plan.verdicts}
    assert outcomes[2] == "paused"
    assert outcomes[4].startswith("filtered:caller_state")


def test_a_claimed_call_goes_to_the_reserved_target_first_then_the_pool() -> None:
    targets = (
        Target(1, "a", "+13125550001", priority=1),
        Target(2, "b", "+13125550002", priority=2, paused=True),
        Target(3, "c", "+13125550003", priority=3),
    )

    plan = plan_call(
        campaign(*targets),
        request(),
        now=NOW,
        rng=Random(1),
        reserved_target=3,
        reserved_destination="+14155550199",
    )

    assert legs(plan) == [3, 1]
    assert plan.legs[0].destination == "+14155550199"
    strict = plan_call(
        campaign(*targets), request(), now=NOW, rng=Random(1), reserved_target=3, strict=True
    )
    assert legs(strict) == [3]


def test_routing_by_bid_puts_the_highest_static_bid_first() -> None:
    targets = (
        Target(1, "low", "+13125550001", bid=5.0),
        Target(2, "none", "+13125550002"),
        Target(3, "high", "+13125550003", bid=9.0),
    )

    plan = plan_call(
        campaign(*targets, strategy=RoutingStrategy.BID), request(), now=NOW, rng=Random(1)
    )

    assert legs(plan) == [3, 1, 2]


def reservation(caller: str | None, *, expires_in: float, **fields: object) -> Reservation:
    return Reservation(
        uuid=f"r-{caller}-{expires_in}",
        caller_number=caller,
        status=fields.pop("status", "reserved"),
        target_id=1,
        expires_at=NOW + timedelta(seconds=expires_in),
        claimed_at=fields.pop("claimed_at", None),
        wiped_at=fields.pop("wiped_at", None),
        pool_number=fields.pop("pool_number", None),
    )


def test_a_miss_names_its_reason() -> None:
    expired = reservation(CALLER, expires_in=-1)
    claimed = reservation(CALLER, expires_in=5, claimed_at=NOW)
    wiped = reservation(CALLER, expires_in=5, wiped_at=NOW)
    racing = reservation(CALLER, expires_in=5)
    other = reservation("+12125550999", expires_in=5)

    assert explain_miss([expired], CALLER, NOW) == (Match.EXPIRED, expired.uuid)
    assert explain_miss([claimed, expired], CALLER, NOW) == (Match.ALREADY_CLAIMED, claimed.uuid)
    assert explain_miss([wiped], CALLER, NOW) == (Match.WIPED, wiped.uuid)
    assert explain_miss([racing], CALLER, NOW) == (Match.ALREADY_CLAIMED, racing.uuid)
    assert explain_miss([other], CALLER, NOW) == (Match.OTHER_CALLER, None)
    assert explain_miss([other], None, NOW) == (Match.OTHER_CALLER, None)
    assert explain_miss([], CALLER, NOW) == (Match.NONE, None)
    refused = reservation(CALLER, expires_in=5, status="no-target")
    assert explain_miss([refused], CALLER, NOW) == (Match.NONE, None)
