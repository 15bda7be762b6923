"""The decision core: `plan_ping` and `conclude` on hand-built config, fixed time and seed."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from random import Random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbid.domain.decide import (
    UNPRICED_INFO,
    Outcome,
    PingPlan,
    PingStatus,
    Verdict,
    choose_inbound,
    conclude,
    evaluate_target,
    matching_criteria,
    order_by_priority,
    payout_for,
    payout_options,
    plan_ping,
)
from callbid.domain.errors import InvalidInput
from callbid.domain.hours import block_from
from callbid.domain.model import (
    CallerList,
    Campaign,
    Caps,
    ConversionCriterion,
    FilterOp,
    ListKind,
    PayoutKind,
    PingRequest,
    Publisher,
    RtbKey,
    Schedule,
    ShieldScope,
    TagRule,
    Target,
    TargetGroup,
)
from callbid.domain.reserve import (
    CapSubject,
    LiveReservation,
    PayoutOption,
    PeriodCap,
    RateRule,
    ReserveResult,
    ReserveStatus,
)

FAST = settings(database=None, max_examples=150, deadline=None)
NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday, 10:00 in New York
STAMP = NOW.timestamp()
CALLER = "+13105550001"
OTHER_CALLER = "+13105550002"
NUMBER = "+18005550100"
NUMBER_2 = "+18005550101"
POOL = ("+18005550900", "+18005550901")
KEY = "6f1c2d4e-0000-4000-8000-000000000001"
PUBLIC_INFOS = {
    None,
    "Caller suppressed",
    "Publisher closed",
    "Duplicate caller",
    "Publisher capped",
    UNPRICED_INFO,
}


def target(target_id: int, **kw: object) -> Target:
    fields: dict[str, object] = {
        "name": f"Secret Buyer {target_id} LLC",
        "destination": f"+1555000{target_id:04d}",
    }
    fields.update(kw)
    return Target(target_id, **fields)  # type: ignore[arg-type]


def campaign(*targets: Target, **kw: object) -> Campaign:
    fields: dict[str, object] = {"numbers": (NUMBER, NUMBER_2), "targets": targets}
    fields.update(kw)
    return Campaign(5, 2, "Auto insurance", **fields)  # type: ignore[arg-type]


def rtb_key(**kw: object) -> RtbKey:
    return RtbKey(KEY, 2, 5, **kw)  # type: ignore[arg-type]


def ping(
    caller: str | None = CALLER,
    inbound: str | None = None,
    publisher_id: str = "PUB1",
    **tags: str,
) -> PingRequest:
    return PingRequest(KEY, publisher_id, caller, inbound, dict(tags))


def plan(
    camp: Campaign,
    request: PingRequest | None = None,
    *,
    key: RtbKey | None = None,
    publisher: Publisher | None = None,
    seed: int = 1,
    now: datetime = NOW,
) -> PingPlan:
    request = request or ping()
    return plan_ping(
        camp,
        key or rtb_key(),
        publisher or Publisher(request.publisher_id),
        request,
        uuid="r-1",
        now=now,
        rng=Random(seed),
    )


def outcomes(p: PingPlan) -> dict[int, str]:
    return {v.target_id: v.outcome for v in p.verdicts}


def candidate_ids(p: PingPlan) -> list[int]:
    assert p.order is not None
    return [c.target_id for c in p.order.candidates]


def record(target_id: int, **kw: object) -> LiveReservation:
    fields: dict[str, object] = {
        "uuid": "r-1",
        "target_id": target_id,
        "inbound_number": NUMBER,
        "caller_number": CALLER,
        "payout": 12.5,
        "seconds": 90,
        "revenue": 30.0,
        "criterion_id": 1,
        "expires_at": STAMP + 15,
        "holds": False,
        "subject_keys": (f"t{target_id}",),
        "shield_key": None,
        "pool_number": None,
    }
    fields.update(kw)
    return LiveReservation(**fields)  # type: ignore[arg-type]


CLOSED_NOW = Schedule(tz=NY, blocks=(block_from(0, "11:00", "17:00"),))  # opens 16:00Z Monday
OPEN_NOW = Schedule(tz=NY, blocks=(block_from(0, "09:00", "17:00"),))
STATE_RULE = TagRule("caller_state", FilterOp.IN, ("CA", "NY"))


# --- Static verdicts ----------------------------------------------------------------------------


def test_every_target_gets_a_verdict_in_campaign_order() -> None:
    camp = campaign(
        target(1),
        target(2, paused=True),
        target(3, schedule=CLOSED_NOW),
        target(4, schedule=OPEN_NOW),
        target(5, rules=(STATE_RULE,)),
        target(6, caller_list=CallerList(ListKind.BLOCK, frozenset({CALLER}))),
    )
    p = plan(camp, ping(caller_state="TX"))
    assert p.verdicts == (
        Verdict(1, "Secret Buyer 1 LLC", Outcome.ELIGIBLE),
        Verdict(2, "Secret Buyer 2 LLC", Outcome.PAUSED),
        Verdict(3, "Secret Buyer 3 LLC", Outcome.CLOSED),
        Verdict(4, "Secret Buyer 4 LLC", Outcome.ELIGIBLE),
        Verdict(5, "Secret Buyer 5 LLC", "filtered:caller_state in CA,NY"),
        Verdict(6, "Secret Buyer 6 LLC", "filtered:caller_list"),
    )
    assert sorted(candidate_ids(p)) == [1, 4]
    assert p.rejection is None
    assert p.owner_info is None


@pytest.mark.parametrize(
    ("tgt", "expected"),
    [
        (target(1, paused=True, schedule=CLOSED_NOW, rules=(STATE_RULE,)), "paused"),
        (target(1, schedule=CLOSED_NOW, rules=(STATE_RULE,)), "closed"),
        (
            target(
                1,
                rules=(TagRule("age", FilterOp.EXISTS), STATE_RULE),
                caller_list=CallerList(ListKind.BLOCK, frozenset({CALLER})),
            ),
            "filtered:age exists",
        ),
        (
            target(
                1,
                rules=(STATE_RULE, TagRule("age", FilterOp.EXISTS)),
                caller_list=CallerList(ListKind.BLOCK, frozenset({CALLER})),
            ),
            "filtered:caller_state in CA,NY",
        ),
        (
            target(1, caller_list=CallerList(ListKind.BLOCK, frozenset({CALLER}))),
            "filtered:caller_list",
        ),
    ],
)
def test_verdict_precedence(tgt: Target, expected: str) -> None:
    assert evaluate_target(tgt, ping(caller_state="TX"), NOW).outcome == expected


@pytest.mark.parametrize(
    ("kind", "numbers", "caller", "expected"),
    [
        (ListKind.BLOCK, {CALLER}, CALLER, "filtered:caller_list"),
        (ListKind.BLOCK, {CALLER}, OTHER_CALLER, "eligible"),
        (ListKind.BLOCK, {CALLER}, None, "eligible"),
        (ListKind.BLOCK, set(), CALLER, "eligible"),
        (ListKind.ALLOW, {CALLER}, CALLER, "eligible"),
        (ListKind.ALLOW, {CALLER}, OTHER_CALLER, "filtered:caller_list"),
        (ListKind.ALLOW, {CALLER}, None, "filtered:caller_list"),
        (ListKind.ALLOW, set(), CALLER, "filtered:caller_list"),
    ],
)
def test_caller_lists(kind: ListKind, numbers: set[str], caller: str | None, expected: str) -> None:
    tgt = target(1, caller_list=CallerList(kind, frozenset(numbers)))
    assert evaluate_target(tgt, ping(caller), NOW).outcome == expected


def test_schedule_uses_the_target_zone() -> None:
    # 09:00-10:00 New York is 14:00Z-15:00Z: closed at 15:00Z; 10:00-11:00 NY is open.
    early = target(1, schedule=Schedule(tz=NY, blocks=(block_from(0, "09:00", "10:00"),)))
    late = target(2, schedule=Schedule(tz=NY, blocks=(block_from(0, "10:00", "11:00"),)))
    assert outcomes(plan(campaign(early, late))) == {1: "closed", 2: "eligible"}


def test_filter_reads_request_tags() -> None:
    camp = campaign(target(1, rules=(STATE_RULE,)))
    assert outcomes(plan(camp, ping(caller_state="ca"))) == {1: "eligible"}
    assert outcomes(plan(camp, ping(caller_state="WA"))) == {1: "filtered:caller_state in CA,NY"}
    assert outcomes(plan(camp, ping())) == {1: "filtered:caller_state in CA,NY"}


# --- Rejections before the hot state --------------------------------------------------------------


def test_suppressed_caller_is_rejected() -> None:
    camp = campaign(target(1), blocked_callers=frozenset({CALLER}))
    p = plan(camp)
    assert p.order is None
    assert p.rejection == "Caller suppressed"
    assert p.owner_info
    assert p.matched_criteria == ()
    decision = conclude(p, None)
    assert decision.status is PingStatus.REJECTED
    assert decision.info == "Caller suppressed"
    assert decision.record is None
    assert [(r.target_id, r.outcome) for r in decision.log] == [(1, "not_reached")]
    # Another caller goes through.
    assert plan(camp, ping(OTHER_CALLER)).order is not None


def test_no_caller_is_never_suppressed() -> None:
    camp = campaign(target(1), blocked_callers=frozenset({CALLER}), pool_numbers=POOL)
    p = plan(camp, ping(None))
    assert p.rejection is None
    assert p.order is not None


def test_publisher_outside_its_hours_is_rejected() -> None:
    camp = campaign(target(1))
    closed = Publisher("PUB1", schedule=CLOSED_NOW)
    p = plan(camp, publisher=closed)
    assert p.order is None
    assert p.rejection == "Publisher closed"
    decision = conclude(p, None)
    assert (decision.status, decision.info) == (PingStatus.REJECTED, "Publisher closed")
    assert plan(camp, publisher=Publisher("PUB1", schedule=OPEN_NOW)).order is not None


def test_campaign_without_any_number_has_no_target() -> None:
    camp = campaign(target(1), numbers=(), pool_numbers=())
    p = plan(camp)
    assert p.order is None
    assert p.rejection is None
    decision = conclude(p, None)
    assert decision.status is PingStatus.NO_TARGET
    assert decision.info is None
    assert decision.owner_info == "campaign has no tracking number for this ping"


# --- Inbound number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("camp_kw", "key_number", "request_number", "caller", "expected"),
    [
        # The ping's own number wins when the campaign owns it.
        ({}, None, NUMBER_2, CALLER, (NUMBER_2, ())),
        ({}, NUMBER, NUMBER_2, CALLER, (NUMBER_2, ())),
        ({"pool_numbers": POOL}, None, POOL[1], CALLER, (None, (POOL[1],))),
        ({"pool_numbers": POOL}, None, POOL[1], None, (None, (POOL[1],))),
        # The key's fixed number next (trusted even when not listed on the campaign).
        ({}, NUMBER_2, None, CALLER, (NUMBER_2, ())),
        ({}, "+18005550999", None, CALLER, ("+18005550999", ())),
        ({"pool_numbers": POOL}, POOL[0], None, CALLER, (None, (POOL[0],))),
        # Without a caller, even a shared number is taken exclusively.
        ({}, NUMBER_2, None, None, (None, (NUMBER_2,))),
        ({}, None, NUMBER_2, None, (None, (NUMBER_2,))),
        # No caller: the pool, exclusively.
        ({"pool_numbers": POOL}, None, None, None, (None, POOL)),
        ({}, None, None, None, (None, ())),
        # A caller: the campaign's first tracking number, shared.
        ({"pool_numbers": POOL}, None, None, CALLER, (NUMBER, ())),
        ({"numbers": (), "pool_numbers": POOL}, None, None, CALLER, (None, POOL)),
        ({"numbers": (), "pool_numbers": ()}, None, None, CALLER, (None, ())),
    ],
)
def test_choose_inbound(
    camp_kw: dict[str, object],
    key_number: str | None,
    request_number: str | None,
    caller: str | None,
    expected: tuple[str | None, tuple[str, ...]],
) -> None:
    camp = campaign(target(1), **camp_kw)
    key = rtb_key(inbound_number=key_number)
    assert choose_inbound(camp, key, ping(caller, request_number)) == expected


@pytest.mark.parametrize("key_number", [None, NUMBER])
def test_unknown_inbound_number_is_invalid_input(key_number: str | None) -> None:
    camp = campaign(target(1), pool_numbers=POOL)
    request = ping(inbound="+18005550999")
    with pytest.raises(InvalidInput) as raised:
        plan(camp, request, key=rtb_key(inbound_number=key_number))
    assert raised.value.status == 400
    assert "inbound_number" in raised.value.info


def test_plan_carries_the_chosen_inbound() -> None:
    camp = campaign(target(1), pool_numbers=POOL)
    p = plan(camp)
    assert p.order is not None
    assert (p.order.inbound_number, p.order.pool) == (NUMBER, ())
    p = plan(camp, ping(None))
    assert p.order is not None
    assert (p.order.inbound_number, p.order.pool) == (None, POOL)


# --- Payout options -------------------------------------------------------------------------------


def test_no_criterion_offers_payout_zero() -> None:
    p = plan(campaign(target(1), target(2)))
    assert p.order is not None
    assert p.order.options == (PayoutOption(None, 0, 0, 0.0),)
    assert [c.payouts for c in p.order.candidates] == [(0.0,), (0.0,)]
    assert p.matched_criteria == ()


def test_criterion_for_another_publisher_does_not_pay() -> None:
    crit = ConversionCriterion(1, publisher_id="OTHER", payout=20.0, buffer_seconds=60)
    p = plan(campaign(target(1), criteria=(crit,)))
    assert p.order is not None
    assert p.order.options == (PayoutOption(None, 0, 0, 0.0),)
    assert p.order.candidates[0].payouts == (0.0,)


def test_publisher_specific_and_generic_criteria_in_configured_order() -> None:
    generic = ConversionCriterion(1, payout=10.0, revenue=25.0, buffer_seconds=90)
    other = ConversionCriterion(2, publisher_id="OTHER", payout=99.0, buffer_seconds=30)
    mine = ConversionCriterion(
        3, publisher_id="PUB1", payout=15.0, revenue=40.0, buffer_seconds=120, dedupe_seconds=3600
    )
    p = plan(campaign(target(1), criteria=(generic, other, mine)))
    assert p.order is not None
    assert p.matched_criteria == (1, 3)
    assert p.order.options == (
        PayoutOption(1, 0, 90, 25.0),
        PayoutOption(3, 3600, 120, 40.0),
    )
    assert p.order.candidates[0].payouts == (10.0, 15.0)


def test_tag_conditioned_criterion() -> None:
    crit = ConversionCriterion(
        7,
        payout=30.0,
        buffer_seconds=60,
        rules=(TagRule("caller_state", FilterOp.EQUALS, ("CA",)),),
    )
    camp = campaign(target(1), criteria=(crit,))
    ca = plan(camp, ping(caller_state=" ca "))
    tx = plan(camp, ping(caller_state="TX"))
    assert ca.order is not None
    assert tx.order is not None
    assert ca.matched_criteria == (7,)
    assert ca.order.candidates[0].payouts == (30.0,)
    assert tx.matched_criteria == ()
    assert tx.order.candidates[0].payouts == (0.0,)


def test_criterion_matching_uses_publisher_and_tags_together() -> None:
    crit = ConversionCriterion(
        1, publisher_id="PUB1", rules=(TagRule("vertical", FilterOp.EQUALS, ("auto",)),)
    )
    assert [c.id for c in matching_criteria((crit,), ping(vertical="AUTO"))] == [1]
    assert matching_criteria((crit,), ping(vertical="home")) == []
    assert matching_criteria((crit,), ping(publisher_id="PUB2", vertical="auto")) == []


def test_revshare_without_bid_is_unpriced() -> None:
    crit = ConversionCriterion(1, payout_kind=PayoutKind.REVSHARE, payout=25.0)
    p = plan(campaign(target(1), criteria=(crit,)))
    assert p.order is not None
    assert p.order.candidates[0].payouts == (None,)
    assert payout_for(crit, bid=None) is None


@pytest.mark.parametrize(
    ("kind", "payout", "bid", "expected"),
    [
        (PayoutKind.FIXED, 12.5, None, 12.5),
        (PayoutKind.FIXED, 12.5, 100.0, 12.5),
        (PayoutKind.REVSHARE, 25.0, 40.0, 10.0),
        (PayoutKind.REVSHARE, 50.0, 0.0, 0.0),
        (PayoutKind.REVSHARE, 33.0, 10.0, 3.3),
        (PayoutKind.REVSHARE, 100.0, 17.23456, 17.2346),  # rounded to 4 places
    ],
)
def test_payout_for(kind: PayoutKind, payout: float, bid: float | None, expected: float) -> None:
    crit = ConversionCriterion(1, payout_kind=kind, payout=payout)
    assert payout_for(crit, bid=bid) == pytest.approx(expected, abs=1e-9)


def test_payout_options_direct() -> None:
    assert payout_options([]) == (PayoutOption(None, 0, 0, 0.0),)
    crit = ConversionCriterion(4, payout=1.0, revenue=2.0, buffer_seconds=30, dedupe_seconds=60)
    assert payout_options([crit]) == (PayoutOption(4, 60, 30, 2.0),)


# --- The rest of the order -----------------------------------------------------------------------


def test_order_fields() -> None:
    group = TargetGroup(3, "East", Caps(daily=50), tz=NY)
    tgt = target(1, caps=Caps(concurrency=2, hourly=5), group_ids=(3,), dedupe_seconds=600)
    camp = campaign(tgt, groups={3: group})
    key = rtb_key(ttl_seconds=30, count_on_reserved=True)
    publisher = Publisher("PUB1", caps=Caps(daily=100))
    p = plan(camp, key=key, publisher=publisher)
    order = p.order
    assert order is not None
    assert order.namespace == "co2"
    assert order.uuid == "r-1"
    assert order.now == STAMP
    assert order.expires_at == STAMP + 30
    assert order.hold is True
    assert order.caller_number == CALLER
    assert order.rate is None
    assert order.publisher == CapSubject(
        "pPUB1", "publisher", None, (PeriodCap("daily", "pPUB1:d20261123", 100),)
    )
    (cand,) = order.candidates
    assert cand.dedupe_seconds == 600
    assert cand.subjects == (
        CapSubject("t1", "", 2, (PeriodCap("hourly", "t1:h2026112315", 5),)),
        CapSubject("g3", "group-3", None, (PeriodCap("daily", "g3:d20261123", 50),)),
    )
    assert order.seen_key == f"seen:5:{CALLER}"
    assert order.seen_ttl == 600


def test_key_defaults_do_not_hold_and_have_no_publisher_subject() -> None:
    p = plan(campaign(target(1)))
    assert p.order is not None
    assert p.order.hold is False
    assert p.order.expires_at == STAMP + 15
    assert p.order.publisher is None


def test_rate_rule_per_key_and_publisher() -> None:
    p = plan(campaign(target(1)), key=rtb_key(rate_per_second=2.5, rate_burst=4))
    assert p.order is not None
    assert p.order.rate == RateRule(f"rl:{KEY}:PUB1", 2.5, 4)


@pytest.mark.parametrize(
    ("target_dedupe", "criterion_dedupe", "caller", "seen_key", "seen_ttl"),
    [
        ((0, 0), 0, CALLER, None, 0),
        ((0, 120), 0, CALLER, f"seen:5:{CALLER}", 120),
        ((0, 0), 3600, CALLER, f"seen:5:{CALLER}", 3600),
        ((7200, 0), 3600, CALLER, f"seen:5:{CALLER}", 7200),
        ((7200, 0), 3600, None, None, 7200),
    ],
)
def test_seen_key_and_ttl(
    target_dedupe: tuple[int, int],
    criterion_dedupe: int,
    caller: str | None,
    seen_key: str | None,
    seen_ttl: int,
) -> None:
    camp = campaign(
        target(1, dedupe_seconds=target_dedupe[0]),
        target(2, dedupe_seconds=target_dedupe[1], paused=True),
        criteria=(ConversionCriterion(1, dedupe_seconds=criterion_dedupe),),
        pool_numbers=POOL,
    )
    p = plan(camp, ping(caller))
    assert p.order is not None
    assert (p.order.seen_key, p.order.seen_ttl) == (seen_key, seen_ttl)


@pytest.mark.parametrize(
    ("scope", "caller", "expected"),
    [
        (ShieldScope.KEY, CALLER, f"shield:k{KEY}:{CALLER}"),
        (ShieldScope.CAMPAIGN, CALLER, f"shield:c5:{CALLER}"),
        (ShieldScope.OFF, CALLER, None),
        (ShieldScope.KEY, None, None),
        (ShieldScope.CAMPAIGN, None, None),
    ],
)
def test_shield_key_by_scope(scope: ShieldScope, caller: str | None, expected: str | None) -> None:
    camp = campaign(target(1), pool_numbers=POOL)
    p = plan(camp, ping(caller), key=rtb_key(shield_scope=scope))
    assert p.order is not None
    assert p.order.shield_key == expected


def test_campaign_shield_is_shared_by_keys_and_key_shield_is_not() -> None:
    camp = campaign(target(1))
    other_key = RtbKey("another-key", 2, 5, shield_scope=ShieldScope.CAMPAIGN)
    a = plan(camp, key=rtb_key(shield_scope=ShieldScope.CAMPAIGN))
    b = plan(camp, key=other_key)
    assert a.order is not None
    assert b.order is not None
    assert a.order.shield_key == b.order.shield_key
    c = plan(camp, key=replace(other_key, shield_scope=ShieldScope.KEY))
    d = plan(camp, key=rtb_key(shield_scope=ShieldScope.KEY))
    assert c.order is not None
    assert d.order is not None
    assert c.order.shield_key != d.order.shield_key


# --- Routing order -------------------------------------------------------------------------------


def test_lower_priority_first_whatever_the_weight_and_seed() -> None:
    camp = campaign(
        target(1, priority=3, weight=1000),
        target(2, priority=1, weight=1),
        target(3, priority=2, weight=1000),
        target(4, priority=1, weight=1),
        target(5, priority=0, weight=1),
    )
    for seed in range(200):
        order = candidate_ids(plan(camp, seed=seed))
        assert order[0] == 5
        assert set(order[1:3]) == {2, 4}
        assert order[3:] == [3, 1]


def test_only_eligible_targets_are_candidates() -> None:
    camp = campaign(
        target(1, priority=1, paused=True), target(2, priority=2), target(3, priority=3)
    )
    assert candidate_ids(plan(camp)) == [2, 3]


def test_same_seed_same_order_and_seeds_differ() -> None:
    camp = campaign(*(target(i, priority=1 + i % 2, weight=1 + i % 3) for i in range(1, 9)))
    orders = {tuple(candidate_ids(plan(camp, seed=seed))) for seed in range(40)}
    for seed in (0, 1, 12345):
        assert candidate_ids(plan(camp, seed=seed)) == candidate_ids(plan(camp, seed=seed))
    assert len(orders) > 10


def test_plan_orders_as_order_by_priority_with_the_same_rng() -> None:
    targets = [target(i, priority=1 + i % 2, weight=1 + i % 4) for i in range(1, 7)]
    for seed in range(20):
        expected = [t.id for t in order_by_priority(targets, Random(seed))]
        assert candidate_ids(plan(campaign(*targets), seed=seed)) == expected


def within(observed: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(observed - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_weighted_leader_frequency() -> None:
    """Over 20,000 draws each target leads its tier with frequency weight / total weight."""
    tier1 = [target(1, weight=1), target(2, weight=2), target(3, weight=3), target(4, weight=4)]
    tier2 = [target(5, priority=2, weight=1), target(6, priority=2, weight=9)]
    camp = campaign(*tier1, *tier2)
    draws = 20_000
    rng = Random(20261123)
    lead1: Counter[int] = Counter()
    lead2: Counter[int] = Counter()
    for _ in range(draws):
        ids = [t.id for t in order_by_priority(list(camp.targets), rng)]
        lead1[ids[0]] += 1
        lead2[ids[4]] += 1
    for t in tier1:
        assert within(lead1[t.id], draws, t.weight / 10), (t.id, lead1)
    for t in tier2:
        assert within(lead2[t.id], draws, t.weight / 10), (t.id, lead2)


def test_weighted_full_order_is_sampling_without_replacement() -> None:
    """P(a, b, c) = w_a / W * w_b / (W - w_a): every permutation with its exact probability."""
    weights = {1: 1, 2: 2, 3: 5}
    targets = [target(i, weight=w) for i, w in weights.items()]
    draws = 20_000
    rng = Random(7)
    seen = Counter(tuple(t.id for t in order_by_priority(targets, rng)) for _ in range(draws))
    total = sum(weights.values())
    for a, b, c in itertools.permutations(weights):
        p = weights[a] / total * weights[b] / (total - weights[a])
        assert within(seen[(a, b, c)], draws, p), ((a, b, c), seen)


def test_equal_weights_are_uniform_through_plan_ping() -> None:
    camp = campaign(target(1), target(2), target(3))
    draws = 6_000
    leaders = Counter(candidate_ids(plan(camp, seed=seed))[0] for seed in range(draws))
    for tid in (1, 2, 3):
        assert within(leaders[tid], draws, 1 / 3), leaders


@given(
    specs=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 1_000_000)), max_size=12),
    seed=st.integers(0, 2**32),
)
@FAST
def test_order_by_priority_is_a_sorted_permutation(specs: list[tuple[int, int]], seed: int) -> None:
    targets = [target(i, priority=p, weight=w) for i, (p, w) in enumerate(specs)]
    ordered = order_by_priority(targets, Random(seed))
    assert sorted(t.id for t in ordered) == [t.id for t in targets]
    priorities = [t.priority for t in ordered]
    assert priorities == sorted(priorities)
    assert [t.id for t in order_by_priority(targets, Random(seed))] == [t.id for t in ordered]


# --- conclude -------------------------------------------------------------------------------------


def five_target_plan() -> PingPlan:
    camp = campaign(
        target(1, paused=True),
        target(2),
        target(3),
        target(4, rules=(STATE_RULE,)),
        target(5),
    )
    return plan(camp, ping(caller_state="TX"))


def log_of(result: ReserveResult | None) -> list[tuple[int, int, str, str]]:
    decision = conclude(five_target_plan(), result)
    return [(r.position, r.target_id, r.target_name, r.outcome) for r in decision.log]


def test_conclude_reserved() -> None:
    rec = record(3)
    result = ReserveResult(ReserveStatus.RESERVED, rec, blocked=((2, "capped:daily"),))
    decision = conclude(five_target_plan(), result)
    assert decision.status is PingStatus.RESERVED
    assert decision.info is None
    assert decision.owner_info is None
    assert decision.record is rec
    assert log_of(result) == [
        (0, 1, "Secret Buyer 1 LLC", "paused"),
        (1, 2, "Secret Buyer 2 LLC", "capped:daily"),
        (2, 3, "Secret Buyer 3 LLC", "selected"),
        (3, 4, "Secret Buyer 4 LLC", "filtered:caller_state in CA,NY"),
        (4, 5, "Secret Buyer 5 LLC", "not_reached"),
    ]


def test_conclude_no_target_lists_every_reason() -> None:
    result = ReserveResult(
        ReserveStatus.NO_TARGET,
        blocked=((5, "duplicate"), (2, "capped:group-3:daily"), (3, "capped:concurrency")),
    )
    decision = conclude(five_target_plan(), result)
    assert decision.status is PingStatus.NO_TARGET
    assert decision.info is None
    assert decision.owner_info == "no eligible target had capacity"
    assert decision.record is None
    assert [o for *_, o in log_of(result)] == [
        "paused",
        "capped:group-3:daily",
        "capped:concurrency",
        "filtered:caller_state in CA,NY",
        "duplicate",
    ]


@pytest.mark.parametrize(
    ("status", "info"),
    [
        (ReserveStatus.DUPLICATE, "Duplicate caller"),
        (ReserveStatus.PUBLISHER_CAPPED, "Publisher capped"),
        (ReserveStatus.UNPRICED, UNPRICED_INFO),
    ],
)
def test_conclude_public_rejections(status: ReserveStatus, info: str) -> None:
    result = ReserveResult(status, blocked=((2, "capped:hourly"),))
    decision = conclude(five_target_plan(), result)
    assert decision.status is PingStatus.REJECTED
    assert decision.info == info
    assert decision.owner_info == info.lower()
    assert decision.record is None
    untried = {
        ReserveStatus.DUPLICATE: "duplicate",
        ReserveStatus.PUBLISHER_CAPPED: "publisher_capped",
        ReserveStatus.UNPRICED: "unpriced",
    }[status]
    assert [o for *_, o in log_of(result)] == [
        "paused",
        "capped:hourly",
        untried,
        "filtered:caller_state in CA,NY",
        untried,
    ]


def test_conclude_no_pool_number() -> None:
    decision = conclude(five_target_plan(), ReserveResult(ReserveStatus.NO_POOL_NUMBER))
    assert decision.status is PingStatus.NO_TARGET
    assert decision.info is None
    assert decision.owner_info == "no free pool number"


def test_conclude_without_hot_state_answer() -> None:
    decision = conclude(five_target_plan(), None)
    assert decision.status is PingStatus.NO_TARGET
    assert decision.record is None
    assert [o for *_, o in log_of(None)] == [
        "paused",
        "not_reached",
        "not_reached",
        "filtered:caller_state in CA,NY",
        "not_reached",
    ]


def test_unknown_blocked_target_is_ignored() -> None:
    result = ReserveResult(ReserveStatus.NO_TARGET, blocked=((99, "capped:daily"),))
    assert [tid for _, tid, *_ in log_of(result)] == [1, 2, 3, 4, 5]


def test_static_outcome_is_not_overwritten_by_hot_state() -> None:
    # A paused or filtered target is never a candidate; its row keeps the static reason.
    result = ReserveResult(ReserveStatus.NO_TARGET, blocked=((1, "capped:daily"),))
    assert log_of(result)[0][3] == "paused"


RESULTS = [
    None,
    ReserveResult(ReserveStatus.RESERVED, record(2), blocked=((3, "capped:daily"),)),
    ReserveResult(ReserveStatus.NO_TARGET, blocked=((2, "duplicate"), (3, "capped:lifetime"))),
    ReserveResult(ReserveStatus.RATE_LIMITED, retry_after=0.5),
    ReserveResult(ReserveStatus.SHIELDED, record(3)),
    ReserveResult(ReserveStatus.DUPLICATE, last_seen=STAMP - 10),
    ReserveResult(ReserveStatus.PUBLISHER_CAPPED),
    ReserveResult(ReserveStatus.NO_POOL_NUMBER, blocked=((2, "capped:hourly"),)),
    ReserveResult(ReserveStatus.UNPRICED, blocked=((2, "capped:monthly"),)),
    # A probe's answer: the service never concludes on it, and nothing would leak if it did.
    ReserveResult(ReserveStatus.AVAILABLE, blocked=((2, "capped:daily"),)),
]


def test_results_cover_every_reserve_status() -> None:
    assert {r.status for r in RESULTS if r is not None} == set(ReserveStatus)


@pytest.mark.parametrize("result", RESULTS)
@pytest.mark.parametrize(
    "setup",
    ["normal", "suppressed", "publisher_closed", "no_number"],
)
def test_public_info_never_reveals_targets(result: ReserveResult | None, setup: str) -> None:
    camp = campaign(
        target(2, name="Acme Insurance Direct", destination="sip:buyer@acme.example"),
        target(3, name="Zeta Leads", destination="+15551230003"),
    )
    publisher = Publisher("PUB1")
    if setup == "suppressed":
        camp = replace(camp, blocked_callers=frozenset({CALLER}))
    elif setup == "publisher_closed":
        publisher = Publisher("PUB1", schedule=CLOSED_NOW)
    elif setup == "no_number":
        camp = replace(camp, numbers=())
    p = plan(camp, publisher=publisher)
    decision = conclude(p, result if p.order is not None else None)
    assert decision.info in PUBLIC_INFOS
    assert decision.status in set(PingStatus)
    for t in camp.targets:
        for secret in (t.name, t.destination, str(t.id)):
            assert secret not in (decision.info or "")
    # The owner sees one row per target, in campaign order.
    assert [r.target_id for r in decision.log] == [2, 3]
    assert [r.position for r in decision.log] == [0, 1]
