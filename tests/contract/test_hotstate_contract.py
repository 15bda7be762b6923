"""The `HotState` contract: what every store (in-process, Redis) must do, through the protocol
alone. Times are epoch seconds chosen by the test; nothing here reads a clock after import."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from callbid.domain.model import Caps, Schedule
from callbid.domain.reserve import (
    Candidate,
    CapSubject,
    HoldStatus,
    LiveReservation,
    PayoutOption,
    RateRule,
    ReserveOrder,
    ReserveResult,
    ReserveStatus,
    cap_subject,
)
from callbid.hotstate.protocol import HotState

T = TypeVar("T")
StoreFactory = Callable[[], AbstractAsyncContextManager[HotState]]

# A realistic instant (15:00 UTC, two days ahead) so a store that also lets its server expire
# keys (Redis TTLs as garbage collection) never drops them before the test's clock says so.
T0 = float((int(time.time()) // 86400 + 2) * 86400 + 15 * 3600)
INBOUND = "+18005550100"
CALLER = "+15551234567"


# --- builders -----------------------------------------------------------------------------


def subject(key: str, label: str = "", at: float = T0, **caps: int | None) -> CapSubject:
    """A cap subject with `Caps(**caps)`, period buckets of UTC wall-clock time `at`."""
    return cap_subject(key, label, Caps(**caps), Schedule(), datetime.fromtimestamp(at, UTC))


def target(target_id: int, at: float = T0, **caps: int | None) -> CapSubject:
    return subject(f"t{target_id}", "", at, **caps)


def group(group_id: int, at: float = T0, **caps: int | None) -> CapSubject:
    return subject(f"g{group_id}", f"group-{group_id}", at, **caps)


def publisher(publisher_id: str = "pub1", at: float = T0, **caps: int | None) -> CapSubject:
    return subject(f"p{publisher_id}", "publisher", at, **caps)


def candidate(
    target_id: int,
    *groups: CapSubject,
    dedupe: int = 0,
    payouts: tuple[float | None, ...] = (10.0,),
    at: float = T0,
    **caps: int | None,
) -> Candidate:
    """Target `target_id` with its own caps (`**caps`) followed by its groups' subjects."""
    return Candidate(target_id, (target(target_id, at, **caps), *groups), dedupe, payouts)


def option(
    window: int = 0, seconds: int = 60, revenue: float = 0.0, criterion_id: int | None = None
) -> PayoutOption:
    return PayoutOption(criterion_id, window, seconds, revenue)


def order(
    ns: str,
    *candidates: Candidate,
    uuid: str | None = None,
    now: float = T0,
    ttl: float = 60,
    hold: bool = True,
    caller: str | None = CALLER,
    inbound: str | None = INBOUND,
    pool: tuple[str, ...] = (),
    rate: RateRule | None = None,
    shield: str | None = None,
    seen: str | None = None,
    seen_ttl: int = 0,
    pub: CapSubject | None = None,
    options: tuple[PayoutOption, ...] = (option(),),
) -> ReserveOrder:
    return ReserveOrder(
        namespace=ns,
        uuid=uuid or str(uuid4()),
        now=now,
        expires_at=now + ttl,
        hold=hold,
        caller_number=caller,
        inbound_number=None if pool else inbound,
        pool=pool,
        rate=rate,
        shield_key=shield,
        seen_key=seen,
        seen_ttl=seen_ttl,
        publisher=pub,
        options=options,
        candidates=candidates,
    )


async def reserved(store: HotState, reserve_order: ReserveOrder) -> LiveReservation:
    """Reserve and insist it worked; the live record."""
    result = await store.reserve(reserve_order)
    assert result.status is ReserveStatus.RESERVED, result
    assert result.record is not None
    return result.record


async def refused(store: HotState, reserve_order: ReserveOrder) -> ReserveResult:
    """Reserve and insist nothing was reserved; the result."""
    result = await store.reserve(reserve_order)
    assert result.status is not ReserveStatus.RESERVED, result
    assert result.record is None
    assert await store.get(reserve_order.namespace, reserve_order.uuid, reserve_order.now) is None
    return result


async def room(store: HotState, ns: str, cand: Candidate, now: float = T0) -> int:
    """How many holding reservations `cand` still takes at `now` (bounded probe, then undone)."""
    taken: list[str] = []
    try:
        for _ in range(50):
            result = await store.reserve(order(ns, cand, now=now, hold=True))
            if result.status is not ReserveStatus.RESERVED:
                return len(taken)
            assert result.record is not None
            taken.append(result.record.uuid)
        raise AssertionError("no cap reached")
    finally:
        for uuid in taken:
            await store.release(ns, uuid)


# --- probes and buyers' live answers --------------------------------------------------------


async def test_probe_names_the_blocked_and_stores_nothing(store: HotState, ns: str) -> None:
    full = candidate(1, concurrency=1)
    await reserved(store, order(ns, full))
    free = candidate(2, concurrency=1)
    probe = replace(order(ns, full, free, shield="shield:k1:" + CALLER), probe=True)

    result = await store.reserve(probe)

    assert result.status is ReserveStatus.AVAILABLE
    assert result.blocked == ((1, "capped:concurrency"),)
    assert result.record is None
    assert await store.get(ns, probe.uuid, T0) is None
    # Nothing was held or shielded: the free target still takes its one reservation.
    assert await room(store, ns, free) == 1
    await reserved(store, order(ns, free, shield="shield:k1:" + CALLER))


async def test_probe_with_every_candidate_blocked_is_no_target(store: HotState, ns: str) -> None:
    full = candidate(1, concurrency=1)
    await reserved(store, order(ns, full))

    result = await store.reserve(replace(order(ns, full), probe=True))

    assert result.status is ReserveStatus.NO_TARGET
    assert result.blocked == ((1, "capped:concurrency"),)


async def test_probe_takes_the_rate_and_sees_the_shield(store: HotState, ns: str) -> None:
    rule = RateRule("rl:k1:pub1", per_second=1.0, burst=1)
    shield = "shield:k1:" + CALLER
    first = await reserved(store, order(ns, candidate(1), shield=shield))

    shielded = await store.reserve(replace(order(ns, candidate(1), shield=shield), probe=True))
    assert shielded.status is ReserveStatus.SHIELDED
    assert shielded.record == first

    other = "+15559876543"
    taken = await store.reserve(
        replace(order(ns, candidate(1), caller=other, rate=rule), probe=True)
    )
    assert taken.status is ReserveStatus.AVAILABLE
    limited = await store.reserve(order(ns, candidate(1), caller=other, rate=rule))
    assert limited.status is ReserveStatus.RATE_LIMITED


async def test_probe_ignores_unpriced_candidates(store: HotState, ns: str) -> None:
    result = await store.reserve(replace(order(ns, candidate(1, payouts=(None,))), probe=True))

    assert result.status is ReserveStatus.AVAILABLE


async def test_live_answer_overrides_revenue_seconds_and_number(store: HotState, ns: str) -> None:
    bid = replace(candidate(1), revenue=42.5, seconds=120, inbound_number="+18005559999")
    record = await reserved(
        store, order(ns, bid, options=(option(seconds=60, revenue=3.0, criterion_id=7),))
    )

    assert (record.revenue, record.seconds, record.inbound_number) == (42.5, 120, "+18005559999")
    assert record.criterion_id == 7
    assert record.pool_number is None
    assert await store.get(ns, record.uuid, T0) == record


async def test_live_answer_number_takes_no_pool_number(store: HotState, ns: str) -> None:
    pool = ("+18005550001",)
    direct = replace(candidate(1), inbound_number="+18005559999")
    first = await reserved(store, order(ns, direct, pool=pool))
    second = await reserved(store, order(ns, candidate(2), pool=pool))

    assert first.pool_number is None
    assert first.inbound_number == "+18005559999"
    assert second.pool_number == pool[0]


async def test_zero_revenue_override_is_kept(store: HotState, ns: str) -> None:
    record = await reserved(
        store, order(ns, replace(candidate(1), revenue=0.0), options=(option(revenue=9.0),))
    )

    assert record.revenue == 0.0


# --- choosing a candidate ------------------------------------------------------------------


async def test_reserves_first_candidate_with_room_and_names_the_skipped(
    store: HotState, ns: str
) -> None:
    g7 = group(7, concurrency=1)
    full = candidate(1, concurrency=1)
    daily_full = candidate(2, daily=1)
    in_full_group = candidate(3, g7)
    await reserved(store, order(ns, full))
    await reserved(store, order(ns, daily_full))
    await reserved(store, order(ns, candidate(5, g7)))
    dup = candidate(4, dedupe=3600)
    seen = "seen:c1:" + CALLER
    await reserved(
        store, order(ns, candidate(9), now=T0 - 10, seen=seen, seen_ttl=3600, hold=False)
    )

    free = candidate(6, payouts=(12.5,))
    also_free = candidate(8)
    opt = option(seconds=90, revenue=20.0, criterion_id=33)
    wanted = order(
        ns,
        full,
        daily_full,
        in_full_group,
        dup,
        free,
        also_free,
        options=(opt,),
        seen=seen,
        seen_ttl=3600,
        ttl=120,
    )
    result = await store.reserve(wanted)

    assert result.status is ReserveStatus.RESERVED
    assert result.blocked == (
        (1, "capped:concurrency"),
        (2, "capped:daily"),
        (3, "capped:group-7:concurrency"),
        (4, "duplicate"),
    )
    assert result.last_seen == T0 - 10
    record = result.record
    assert record is not None
    assert record.uuid == wanted.uuid
    assert record.target_id == 6
    assert record.payout == 12.5
    assert record.seconds == 90
    assert record.revenue == 20.0
    assert record.criterion_id == 33
    assert record.inbound_number == INBOUND
    assert record.caller_number == CALLER
    assert record.expires_at == T0 + 120
    assert record.holds is True
    assert record.shield_key is None
    assert record.pool_number is None
    assert await store.get(ns, wanted.uuid, T0 + 1) == record


async def test_candidate_order_decides(store: HotState, ns: str) -> None:
    a, b = candidate(1), candidate(2)
    assert (await reserved(store, order(ns, a, b))).target_id == 1
    assert (await reserved(store, order(ns, b, a))).target_id == 2


async def test_no_target_when_every_candidate_is_capped(store: HotState, ns: str) -> None:
    a, b = candidate(1, concurrency=1), candidate(2, hourly=1)
    await reserved(store, order(ns, a))
    await reserved(store, order(ns, b))
    result = await refused(store, order(ns, a, b))
    assert result.status is ReserveStatus.NO_TARGET
    assert result.blocked == ((1, "capped:concurrency"), (2, "capped:hourly"))


async def test_no_candidates_is_no_target(store: HotState, ns: str) -> None:
    result = await refused(store, order(ns))
    assert result.status is ReserveStatus.NO_TARGET
    assert result.blocked == ()


async def test_group_cap_is_shared_by_its_targets(store: HotState, ns: str) -> None:
    g3 = group(3, daily=2)
    await reserved(store, order(ns, candidate(1, g3)))
    await reserved(store, order(ns, candidate(2, g3)))
    result = await refused(store, order(ns, candidate(1, g3), candidate(2, g3)))
    assert result.blocked == ((1, "capped:group-3:daily"), (2, "capped:group-3:daily"))


async def test_inbound_number_is_shared(store: HotState, ns: str) -> None:
    cand = candidate(1)
    first = await reserved(store, order(ns, cand))
    second = await reserved(store, order(ns, cand))
    assert first.inbound_number == second.inbound_number == INBOUND
    assert first.pool_number is None
    assert second.pool_number is None


# --- concurrency: holding reservations, release, expiry ------------------------------------


async def test_concurrency_cap_counts_holding_reservations(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=2)
    await reserved(store, order(ns, cand))
    await reserved(store, order(ns, cand))
    result = await refused(store, order(ns, cand))
    assert result.status is ReserveStatus.NO_TARGET
    assert result.blocked == ((1, "capped:concurrency"),)


async def test_a_retried_order_changes_nothing_more(store: HotState, ns: str) -> None:
    """A client retries an order whose reply it lost: same record, no second slot, and the
    rate limit and recency are not charged again."""
    cand = candidate(1, concurrency=2)
    rule_ = RateRule("rate:k1", per_second=1.0, burst=1)
    first_order = order(ns, cand, rate=rule_, seen="c1", seen_ttl=600)
    first = await reserved(store, first_order)
    again = await store.reserve(replace(first_order, now=T0 + 0.01))
    assert again.status is ReserveStatus.RESERVED
    assert again.record == first
    assert await room(store, ns, cand, now=T0 + 0.02) == 1


async def test_release_frees_the_slot_and_ends_the_reservation(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1)
    record = await reserved(store, order(ns, cand))
    await refused(store, order(ns, cand))

    assert await store.release(ns, record.uuid) == record
    assert await store.get(ns, record.uuid, T0) is None
    assert await store.release(ns, record.uuid) is None
    assert await room(store, ns, cand) == 1


async def test_release_of_unknown_reservation_is_none(store: HotState, ns: str) -> None:
    assert await store.release(ns, "no-such-uuid") is None


async def test_expiry_frees_the_slot_and_ends_the_reservation(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1)
    record = await reserved(store, order(ns, cand, ttl=60))
    assert record.expires_at == T0 + 60

    assert await store.get(ns, record.uuid, T0 + 59) == record
    await refused(store, order(ns, cand, now=T0 + 59))

    assert await store.get(ns, record.uuid, T0 + 61) is None
    later = await reserved(store, order(ns, cand, now=T0 + 61))
    assert later.target_id == 1


async def test_at_expires_at_get_and_capacity_agree(store: HotState, ns: str) -> None:
    """Whichever side of the boundary `expires_at` itself is, a store must not report a
    reservation gone while still counting it, nor the reverse."""
    cand = candidate(1, concurrency=1)
    record = await reserved(store, order(ns, cand, ttl=60))
    at = record.expires_at
    live = await store.get(ns, record.uuid, at) is not None
    probe = await store.reserve(order(ns, cand, now=at, hold=False))
    assert (probe.status is ReserveStatus.RESERVED) is not live


async def test_non_holding_reservation_never_consumes_capacity(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1, daily=1)
    for _ in range(3):
        record = await reserved(store, order(ns, cand, hold=False))
        assert record.holds is False
        assert await store.get(ns, record.uuid, T0) == record
    assert await room(store, ns, cand) == 1


async def test_non_holding_reservation_is_refused_when_target_is_full(
    store: HotState, ns: str
) -> None:
    cand = candidate(1, concurrency=1)
    await reserved(store, order(ns, cand, hold=True))
    result = await refused(store, order(ns, cand, hold=False))
    assert result.status is ReserveStatus.NO_TARGET
    assert result.blocked == ((1, "capped:concurrency"),)


# --- hold (confirmation) -------------------------------------------------------------------


async def test_hold_makes_a_reservation_count(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1)
    record = await reserved(store, order(ns, cand, hold=False))
    assert await store.hold(ns, record.uuid, cand.subjects, T0 + 1) == (HoldStatus.HELD, None)

    held = await store.get(ns, record.uuid, T0 + 1)
    assert held is not None
    assert held.holds is True
    assert (held.uuid, held.target_id, held.expires_at) == (
        record.uuid,
        record.target_id,
        record.expires_at,
    )
    result = await refused(store, order(ns, cand, now=T0 + 2, hold=False))
    assert result.blocked == ((1, "capped:concurrency"),)


async def test_hold_is_idempotent(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=2)
    first = await reserved(store, order(ns, cand, hold=False))
    for _ in range(3):
        assert await store.hold(ns, first.uuid, cand.subjects, T0) == (HoldStatus.HELD, None)
    assert await room(store, ns, cand) == 1


async def test_hold_of_a_holding_reservation_is_held_even_when_full(
    store: HotState, ns: str
) -> None:
    cand = candidate(1, concurrency=1)
    record = await reserved(store, order(ns, cand, hold=True))
    assert await store.hold(ns, record.uuid, cand.subjects, T0) == (HoldStatus.HELD, None)
    assert await room(store, ns, cand) == 0
    await store.release(ns, record.uuid)
    assert await room(store, ns, cand) == 1


async def test_hold_is_capped_when_a_subject_is_full(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1)
    first = await reserved(store, order(ns, cand, hold=False))
    second = await reserved(store, order(ns, cand, hold=False))
    assert await store.hold(ns, first.uuid, cand.subjects, T0) == (HoldStatus.HELD, None)
    assert await store.hold(ns, second.uuid, cand.subjects, T0) == (
        HoldStatus.CAPPED,
        "capped:concurrency",
    )
    still = await store.get(ns, second.uuid, T0)
    assert still is not None
    assert still.holds is False


@pytest.mark.parametrize(
    ("subjects", "reason"),
    [
        ((target(1, daily=1),), "capped:daily"),
        ((target(1), group(4, concurrency=1)), "capped:group-4:concurrency"),
        ((target(1), publisher(monthly=1)), "capped:publisher:monthly"),
    ],
)
async def test_hold_reason_names_the_full_subject(
    store: HotState, ns: str, subjects: tuple[CapSubject, ...], reason: str
) -> None:
    cand = Candidate(1, subjects, 0, (10.0,))
    first = await reserved(store, order(ns, cand, hold=False))
    second = await reserved(store, order(ns, cand, hold=False))
    assert await store.hold(ns, first.uuid, subjects, T0) == (HoldStatus.HELD, None)
    assert await store.hold(ns, second.uuid, subjects, T0) == (HoldStatus.CAPPED, reason)


async def test_hold_of_unknown_released_or_expired_is_unknown(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=5)
    subjects = cand.subjects
    assert await store.hold(ns, "no-such-uuid", subjects, T0) == (HoldStatus.UNKNOWN, None)

    released = await reserved(store, order(ns, cand, hold=False))
    await store.release(ns, released.uuid)
    assert await store.hold(ns, released.uuid, subjects, T0) == (HoldStatus.UNKNOWN, None)

    expired = await reserved(store, order(ns, cand, hold=False, ttl=30))
    assert await store.hold(ns, expired.uuid, subjects, T0 + 31) == (HoldStatus.UNKNOWN, None)
    assert await room(store, ns, cand, now=T0 + 31) == 5


async def test_held_subjects_block_later_reservations_until_released(
    store: HotState, ns: str
) -> None:
    pub = publisher(concurrency=1)
    cand = candidate(1)
    record = await reserved(store, order(ns, cand, hold=False, pub=pub))
    await reserved(store, order(ns, candidate(2), hold=False, pub=pub))

    assert await store.hold(ns, record.uuid, (*cand.subjects, pub), T0) == (HoldStatus.HELD, None)
    result = await refused(store, order(ns, candidate(2), pub=pub))
    assert result.status is ReserveStatus.PUBLISHER_CAPPED

    await store.release(ns, record.uuid)
    await reserved(store, order(ns, candidate(2), pub=pub))


async def test_hold_counts_against_the_subjects_it_is_given(store: HotState, ns: str) -> None:
    """Confirmation recomputes the subjects (groups or publisher caps may have changed since
    the ping): the reservation counts against those, until it ends."""
    g5 = group(5, concurrency=1)
    record = await reserved(store, order(ns, candidate(1), hold=False))
    subjects = (target(1), g5)
    assert await store.hold(ns, record.uuid, subjects, T0) == (HoldStatus.HELD, None)
    result = await refused(store, order(ns, candidate(2, g5)))
    assert result.blocked == ((2, "capped:group-5:concurrency"),)

    await store.release(ns, record.uuid)
    await reserved(store, order(ns, candidate(2, g5)))


async def test_a_held_reservation_frees_its_slot_on_expiry(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1)
    record = await reserved(store, order(ns, cand, hold=False, ttl=30))
    assert await store.hold(ns, record.uuid, cand.subjects, T0 + 10) == (HoldStatus.HELD, None)
    await refused(store, order(ns, cand, now=T0 + 29))
    await reserved(store, order(ns, cand, now=T0 + 31))


# --- period caps ---------------------------------------------------------------------------


@pytest.mark.parametrize("period", ["hourly", "daily", "monthly", "lifetime"])
async def test_pending_holds_count_against_period_caps(
    store: HotState, ns: str, period: str
) -> None:
    cand = candidate(1, **{period: 2})
    first = await reserved(store, order(ns, cand))
    await reserved(store, order(ns, cand))
    result = await refused(store, order(ns, cand))
    assert result.status is ReserveStatus.NO_TARGET
    assert result.blocked == ((1, f"capped:{period}"),)

    await store.release(ns, first.uuid)
    await reserved(store, order(ns, cand))
    await refused(store, order(ns, cand))


async def test_expired_pending_hold_no_longer_counts(store: HotState, ns: str) -> None:
    cand = candidate(1, daily=1)
    await reserved(store, order(ns, cand, ttl=30))
    await refused(store, order(ns, cand, now=T0 + 10))
    await reserved(store, order(ns, cand, now=T0 + 31))


async def test_first_full_cap_is_reported(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1, hourly=1, daily=1)
    await reserved(store, order(ns, cand))
    result = await refused(store, order(ns, cand))
    assert result.blocked == ((1, "capped:concurrency"),)

    daily_first = candidate(1, hourly=1, daily=1)
    result = await refused(store, order(ns, daily_first))
    assert result.blocked == ((1, "capped:hourly"),)


# --- ping shield ---------------------------------------------------------------------------


async def test_same_shield_key_while_live_returns_the_first_record(
    store: HotState, ns: str
) -> None:
    cand = candidate(1, concurrency=1)
    first = await reserved(store, order(ns, cand, shield="shield:k1:" + CALLER, ttl=60))
    assert first.shield_key == "shield:k1:" + CALLER

    again = order(ns, cand, shield="shield:k1:" + CALLER, now=T0 + 30, ttl=60)
    result = await store.reserve(again)
    assert result.status is ReserveStatus.SHIELDED
    assert result.record == first
    assert result.record is not None
    assert result.record.uuid == first.uuid
    assert result.record.expires_at == T0 + 60
    assert await store.get(ns, again.uuid, T0 + 30) is None
    assert await room(store, ns, cand, now=T0 + 30) == 0


async def test_shield_applies_to_non_holding_reservations_and_before_recency(
    store: HotState, ns: str
) -> None:
    cand = candidate(1, dedupe=3600)
    seen = "seen:c1:" + CALLER
    first = await reserved(store, order(ns, cand, hold=False, shield="s", seen=seen, seen_ttl=3600))
    windowed = (option(window=3600),)
    result = await store.reserve(
        order(ns, cand, hold=False, shield="s", seen=seen, seen_ttl=3600, options=windowed)
    )
    assert result.status is ReserveStatus.SHIELDED
    assert result.record == first


async def test_shield_ends_with_release(store: HotState, ns: str) -> None:
    cand = candidate(1)
    first = await reserved(store, order(ns, cand, shield="s"))
    await store.release(ns, first.uuid)
    second = await reserved(store, order(ns, cand, shield="s"))
    assert second.uuid != first.uuid
    result = await store.reserve(order(ns, cand, shield="s"))
    assert result.status is ReserveStatus.SHIELDED
    assert result.record == second


async def test_shield_ends_with_expiry(store: HotState, ns: str) -> None:
    cand = candidate(1)
    first = await reserved(store, order(ns, cand, shield="s", ttl=60))
    second = await reserved(store, order(ns, cand, shield="s", now=T0 + 61, ttl=60))
    assert second.uuid != first.uuid
    assert second.expires_at == T0 + 121
    result = await store.reserve(order(ns, cand, shield="s", now=T0 + 62))
    assert result.status is ReserveStatus.SHIELDED
    assert result.record == second
    # Releasing the long-expired first reservation must not lift the second one's shield.
    await store.release(ns, first.uuid)
    result = await store.reserve(order(ns, cand, shield="s", now=T0 + 63))
    assert result.status is ReserveStatus.SHIELDED
    assert result.record == second


async def test_distinct_shield_keys_are_independent(store: HotState, ns: str) -> None:
    cand = candidate(1)
    a = await reserved(store, order(ns, cand, shield="a"))
    b = await reserved(store, order(ns, cand, shield="b"))
    assert a.uuid != b.uuid


# --- pool numbers --------------------------------------------------------------------------


async def test_pool_numbers_are_taken_exclusively(store: HotState, ns: str) -> None:
    pool = ("+18005550001", "+18005550002")
    cand = candidate(1)
    first = await reserved(store, order(ns, cand, pool=pool))
    second = await reserved(store, order(ns, cand, pool=pool, hold=False))
    taken = {first.pool_number, second.pool_number}
    assert taken == set(pool)
    assert first.inbound_number == first.pool_number
    assert second.inbound_number == second.pool_number

    result = await refused(store, order(ns, cand, pool=pool))
    assert result.status is ReserveStatus.NO_POOL_NUMBER

    await store.release(ns, first.uuid)
    third = await reserved(store, order(ns, cand, pool=pool))
    assert third.pool_number == first.pool_number


async def test_pool_number_is_freed_on_expiry(store: HotState, ns: str) -> None:
    pool = ("+18005550001",)
    cand = candidate(1)
    first = await reserved(store, order(ns, cand, pool=pool, ttl=60))
    await refused(store, order(ns, cand, pool=pool, now=T0 + 59))
    second = await reserved(store, order(ns, cand, pool=pool, now=T0 + 61))
    assert second.pool_number == first.pool_number == pool[0]
    # The expired first reservation's late release must leave the number with the second.
    await store.release(ns, first.uuid)
    result = await refused(store, order(ns, cand, pool=pool, now=T0 + 62))
    assert result.status is ReserveStatus.NO_POOL_NUMBER


async def test_no_pool_number_takes_nothing(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=2)
    await reserved(store, order(ns, cand, pool=("+18005550001",)))
    result = await refused(store, order(ns, candidate(9), cand, pool=("+18005550001",)))
    assert result.status is ReserveStatus.NO_POOL_NUMBER
    assert await room(store, ns, cand) == 1
    assert await room(store, ns, candidate(9, concurrency=1)) == 1


async def test_no_pool_number_reports_the_skipped(store: HotState, ns: str) -> None:
    full = candidate(1, concurrency=1)
    await reserved(store, order(ns, full))
    await reserved(store, order(ns, candidate(2), pool=("+18005550001",)))
    result = await refused(store, order(ns, full, candidate(2), pool=("+18005550001",)))
    assert result.status is ReserveStatus.NO_POOL_NUMBER
    assert result.blocked == ((1, "capped:concurrency"),)


# --- caller recency ------------------------------------------------------------------------

SEEN = "seen:c1:" + CALLER
NEW_OR_REPEAT = (
    option(window=86400, seconds=120, revenue=40.0, criterion_id=1),
    option(window=0, seconds=30, revenue=4.0, criterion_id=2),
)


async def test_recency_chooses_the_payout_option(store: HotState, ns: str) -> None:
    cand = candidate(1, payouts=(50.0, 5.0))
    kw: dict[str, Any] = {"seen": SEEN, "seen_ttl": 86400, "options": NEW_OR_REPEAT}
    new = await store.reserve(order(ns, cand, hold=False, **kw))
    assert new.last_seen is None
    assert new.record is not None
    assert (new.record.payout, new.record.seconds, new.record.revenue) == (50.0, 120, 40.0)
    assert new.record.criterion_id == 1

    repeat = await store.reserve(order(ns, cand, hold=False, now=T0 + 600, **kw))
    assert repeat.status is ReserveStatus.RESERVED
    assert repeat.last_seen == T0
    assert repeat.record is not None
    assert (repeat.record.payout, repeat.record.seconds, repeat.record.revenue) == (5.0, 30, 4.0)
    assert repeat.record.criterion_id == 2


async def test_caller_inside_every_window_is_duplicate(store: HotState, ns: str) -> None:
    cand = candidate(1)
    kw: dict[str, Any] = {"seen": SEEN, "seen_ttl": 86400, "options": (option(window=300),)}
    await reserved(store, order(ns, cand, hold=False, **kw))

    result = await refused(store, order(ns, cand, now=T0 + 100, **kw))
    assert result.status is ReserveStatus.DUPLICATE
    assert result.last_seen == T0
    # A duplicate is not a sighting: the window still runs from T0.
    later = await store.reserve(order(ns, cand, now=T0 + 300, **kw))
    assert later.status is ReserveStatus.RESERVED
    assert later.last_seen == T0


async def test_candidate_dedupe_skips_the_candidate(store: HotState, ns: str) -> None:
    strict, lax = candidate(1, dedupe=3600), candidate(2)
    kw: dict[str, Any] = {"seen": SEEN, "seen_ttl": 3600}
    assert (await reserved(store, order(ns, strict, lax, hold=False, **kw))).target_id == 1

    result = await store.reserve(order(ns, strict, lax, now=T0 + 60, hold=False, **kw))
    assert result.status is ReserveStatus.RESERVED
    assert result.blocked == ((1, "duplicate"),)
    assert result.record is not None
    assert result.record.target_id == 2

    only_strict = await refused(store, order(ns, strict, now=T0 + 120, **kw))
    assert only_strict.status is ReserveStatus.NO_TARGET
    assert only_strict.blocked == ((1, "duplicate"),)

    after = await store.reserve(order(ns, strict, lax, now=T0 + 60 + 3600, **kw))
    assert after.status is ReserveStatus.RESERVED
    assert after.blocked == ()
    assert after.record is not None
    assert after.record.target_id == 1


async def test_recency_is_recorded_only_when_reserved(store: HotState, ns: str) -> None:
    full = candidate(1, concurrency=1, dedupe=3600)
    blocker = await reserved(store, order(ns, full))
    kw: dict[str, Any] = {"seen": SEEN, "seen_ttl": 3600, "options": (option(window=3600),)}

    assert (await refused(store, order(ns, full, **kw))).status is ReserveStatus.NO_TARGET
    unpriced = candidate(2, payouts=(None,))
    assert (await refused(store, order(ns, unpriced, **kw))).status is ReserveStatus.UNPRICED
    no_pool = order(ns, candidate(3), pool=("+18005550001",), **kw)
    await reserved(store, order(ns, candidate(3), pool=("+18005550001",)))
    assert (await refused(store, no_pool)).status is ReserveStatus.NO_POOL_NUMBER
    pub = publisher(concurrency=1)
    await reserved(store, order(ns, candidate(4), pub=pub))
    capped = order(ns, candidate(4), pub=pub, **kw)
    assert (await refused(store, capped)).status is ReserveStatus.PUBLISHER_CAPPED

    await store.release(ns, blocker.uuid)
    result = await store.reserve(order(ns, full, now=T0 + 10, **kw))
    assert result.status is ReserveStatus.RESERVED
    assert result.last_seen is None


async def test_recency_is_forgotten_after_seen_ttl(store: HotState, ns: str) -> None:
    cand = candidate(1, dedupe=3600)
    kw: dict[str, Any] = {"seen": SEEN, "seen_ttl": 600}
    await reserved(store, order(ns, cand, **kw))
    assert (await refused(store, order(ns, cand, now=T0 + 599, **kw))).last_seen == T0
    result = await store.reserve(order(ns, cand, now=T0 + 601, **kw))
    assert result.status is ReserveStatus.RESERVED
    assert result.last_seen is None


async def test_recency_is_per_seen_key(store: HotState, ns: str) -> None:
    cand = candidate(1, dedupe=3600)
    await reserved(store, order(ns, cand, seen="seen:a", seen_ttl=3600))
    other = await store.reserve(order(ns, cand, seen="seen:b", seen_ttl=3600))
    assert other.status is ReserveStatus.RESERVED
    assert other.last_seen is None
    anonymous = await store.reserve(order(ns, cand, caller=None))
    assert anonymous.status is ReserveStatus.RESERVED


# --- publisher caps ------------------------------------------------------------------------


async def test_publisher_cap_refuses_the_whole_ping(store: HotState, ns: str) -> None:
    pub = publisher(concurrency=1)
    first = await reserved(store, order(ns, candidate(1), pub=pub))
    result = await refused(store, order(ns, candidate(2), candidate(3), pub=pub))
    assert result.status is ReserveStatus.PUBLISHER_CAPPED
    assert result.blocked == ()
    other_publisher = publisher("pub2", concurrency=1)
    await reserved(store, order(ns, candidate(2), pub=other_publisher))

    await store.release(ns, first.uuid)
    await reserved(store, order(ns, candidate(2), pub=pub))


async def test_publisher_period_cap_counts_pending_holds(store: HotState, ns: str) -> None:
    pub = publisher(daily=2)
    await reserved(store, order(ns, candidate(1), pub=pub, hold=False))
    await reserved(store, order(ns, candidate(1), pub=pub))
    await reserved(store, order(ns, candidate(2), pub=pub))
    result = await refused(store, order(ns, candidate(3), pub=pub))
    assert result.status is ReserveStatus.PUBLISHER_CAPPED


# --- unpriced ------------------------------------------------------------------------------


async def test_unpriced_holds_nothing(store: HotState, ns: str) -> None:
    full = candidate(1, concurrency=1)
    await reserved(store, order(ns, full))
    cand = candidate(2, concurrency=1, payouts=(None,))
    pool = ("+18005550001",)
    unpriced = order(ns, full, cand, candidate(3), pool=pool, shield="s")
    result = await refused(store, unpriced)
    assert result.status is ReserveStatus.UNPRICED
    assert result.blocked == ((1, "capped:concurrency"),)

    # No slot, pool number or shield entry was taken.
    priced = candidate(2, concurrency=1)
    record = await reserved(store, order(ns, priced, pool=pool, shield="s"))
    assert record.pool_number == pool[0]


async def test_unpriced_depends_on_the_chosen_option(store: HotState, ns: str) -> None:
    cand = candidate(1, payouts=(None, 5.0))
    kw: dict[str, Any] = {"seen": SEEN, "seen_ttl": 86400, "options": NEW_OR_REPEAT}
    new_caller = await refused(store, order(ns, cand, **kw))
    assert new_caller.status is ReserveStatus.UNPRICED
    await reserved(store, order(ns, candidate(2), **kw))
    repeat = await store.reserve(order(ns, cand, now=T0 + 60, **kw))
    assert repeat.status is ReserveStatus.RESERVED
    assert repeat.record is not None
    assert repeat.record.payout == 5.0


# --- rate limiting -------------------------------------------------------------------------


async def test_rate_limit_allows_a_burst_then_limits(store: HotState, ns: str) -> None:
    rule_ = RateRule("rate:k1", per_second=1.0, burst=3)
    cand = candidate(1)
    for _ in range(3):
        await reserved(store, order(ns, cand, hold=False, rate=rule_))
    result = await refused(store, order(ns, cand, hold=False, rate=rule_))
    assert result.status is ReserveStatus.RATE_LIMITED
    assert result.retry_after > 0

    too_soon = T0 + result.retry_after / 2
    assert (await refused(store, order(ns, cand, now=too_soon, rate=rule_))).retry_after > 0
    await reserved(store, order(ns, cand, now=T0 + result.retry_after, rate=rule_))


async def test_rate_limit_recovers_the_burst(store: HotState, ns: str) -> None:
    rule_ = RateRule("rate:k1", per_second=2.0, burst=2)
    cand = candidate(1)
    for now in (T0, T0 + 60):
        for _ in range(2):
            await reserved(store, order(ns, cand, hold=False, now=now, rate=rule_))
        limited = await refused(store, order(ns, cand, now=now, rate=rule_))
        assert limited.status is ReserveStatus.RATE_LIMITED


async def test_rate_limit_is_per_key(store: HotState, ns: str) -> None:
    one, two = RateRule("rate:k1", 1.0, 1), RateRule("rate:k2", 1.0, 1)
    cand = candidate(1)
    await reserved(store, order(ns, cand, hold=False, rate=one))
    assert (await refused(store, order(ns, cand, rate=one))).status is ReserveStatus.RATE_LIMITED
    await reserved(store, order(ns, cand, hold=False, rate=two))


async def test_rate_limit_comes_before_the_shield(store: HotState, ns: str) -> None:
    rule_ = RateRule("rate:k1", 1.0, 1)
    cand = candidate(1)
    await reserved(store, order(ns, cand, shield="s", rate=rule_))
    result = await refused(store, order(ns, cand, shield="s", rate=rule_))
    assert result.status is ReserveStatus.RATE_LIMITED


# --- namespaces ----------------------------------------------------------------------------


async def test_namespaces_isolate_everything(store: HotState) -> None:
    one, two = f"test-{uuid4().hex}", f"test-{uuid4().hex}"
    cand = candidate(1, concurrency=1, daily=1, dedupe=3600)
    pub = publisher(concurrency=1)
    pool = ("+18005550001",)
    rule_ = RateRule("rate:k1", 1.0, 1)
    kw: dict[str, Any] = {
        "pool": pool,
        "shield": "s",
        "seen": SEEN,
        "seen_ttl": 3600,
        "pub": pub,
        "rate": rule_,
        "options": (option(window=3600),),
    }
    uuid = str(uuid4())
    first = await reserved(store, order(one, cand, uuid=uuid, **kw))

    assert await store.get(two, uuid, T0) is None
    assert await store.hold(two, uuid, cand.subjects, T0) == (HoldStatus.UNKNOWN, None)
    assert await store.release(two, uuid) is None
    assert await store.get(one, uuid, T0) == first

    result = await store.reserve(order(two, cand, uuid=uuid, **kw))
    assert result.status is ReserveStatus.RESERVED
    assert result.last_seen is None
    assert result.record is not None
    assert result.record.pool_number == pool[0]
    assert await store.get(one, uuid, T0) == first

    assert await store.release(two, uuid) is not None
    assert await store.get(one, uuid, T0) == first
    assert await room(store, one, candidate(1, concurrency=1)) == 0


# --- properties ----------------------------------------------------------------------------


def run_on_own_loop(factory: StoreFactory, body: Callable[[HotState], Coroutine[Any, Any, T]]) -> T:
    """Open a fresh store on a loop of its own, run `body` with it, close both."""
    loop = asyncio.new_event_loop()
    try:

        async def main() -> T:
            async with factory() as hot:
                return await body(hot)

        return loop.run_until_complete(main())
    finally:
        loop.close()


@pytest.mark.parametrize(("cap", "pings"), [(1, 10), (3, 20), (5, 5), (8, 3), (0, 4)])
async def test_concurrent_reserves_grant_exactly_the_cap(
    store: HotState, ns: str, cap: int, pings: int
) -> None:
    cand = candidate(1, concurrency=cap)
    results = await asyncio.gather(*(store.reserve(order(ns, cand)) for _ in range(pings)))
    granted = [r for r in results if r.status is ReserveStatus.RESERVED]
    assert len(granted) == min(cap, pings)
    assert all(
        r.status is ReserveStatus.NO_TARGET and r.blocked == ((1, "capped:concurrency"),)
        for r in results
        if r.status is not ReserveStatus.RESERVED
    )
    for result in granted:
        assert result.record is not None
        assert await store.get(ns, result.record.uuid, T0) == result.record


# `store_factory` only names a factory: every example opens a fresh store with it.
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    cap=st.integers(0, 6),
    group_cap=st.none() | st.integers(0, 6),
    pings=st.integers(1, 16),
    pool_size=st.none() | st.integers(1, 8),
)
def test_concurrent_reserves_and_holds_respect_caps(
    store_factory: StoreFactory, cap: int, group_cap: int | None, pings: int, pool_size: int | None
) -> None:
    ns = f"test-{uuid4().hex}"
    g1 = group(1, concurrency=group_cap)
    targets = [candidate(1, g1, concurrency=cap), candidate(2, g1, concurrency=cap)]
    pool = tuple(f"+1800555{n:04d}" for n in range(pool_size or 0))
    limit = min(2 * cap, group_cap if group_cap is not None else 2 * cap, pool_size or 99)

    async def body(hot: HotState) -> None:
        # Holding reservations launched together.
        results = await asyncio.gather(
            *(hot.reserve(order(ns, *targets, pool=pool)) for _ in range(pings))
        )
        granted = [r.record for r in results if r.record is not None]
        assert len(granted) == min(limit, pings)
        numbers = [r.pool_number for r in granted if r.pool_number is not None]
        assert len(numbers) == len(set(numbers)) == (len(granted) if pool else 0)
        for t in (1, 2):
            assert sum(1 for r in granted if r.target_id == t) <= cap
        for record in granted:
            await hot.release(ns, record.uuid)

        # Non-holding reservations (all on target 1, nothing holds) confirmed together.
        loose = [await hot.reserve(order(ns, *targets, hold=False)) for _ in range(pings)]
        records = [r.record for r in loose if r.record is not None]
        assert len(records) == (pings if cap > 0 and group_cap != 0 else 0)
        assert all(r.target_id == 1 for r in records)
        answers = await asyncio.gather(
            *(hot.hold(ns, r.uuid, targets[0].subjects, T0) for r in records)
        )
        held = [a for a in answers if a == (HoldStatus.HELD, None)]
        assert len(held) == min(cap, pings, group_cap if group_cap is not None else pings)
        reasons = {"capped:concurrency", "capped:group-1:concurrency"}
        assert all(
            s is HoldStatus.CAPPED and r in reasons for s, r in answers if s is not HoldStatus.HELD
        )

    run_on_own_loop(store_factory, body)


@dataclass
class Modelled:
    target_id: int
    expires_at: float
    holds: bool
    released: bool = False


class HoldingMachine(RuleBasedStateMachine):
    """Random reserve / confirm / release / get / time steps against three targets with
    concurrency caps sharing one group cap. The model predicts every answer; the invariant
    checks the caps hold and probes the store for the room the model expects."""

    factory: ClassVar[StoreFactory]
    uuids = Bundle("uuids")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.context = self.factory()
        self.store: HotState = self.run(self.context.__aenter__())
        self.ns = f"test-{uuid4().hex}"
        self.now = T0
        self.caps: dict[int, int] = {}
        self.group_cap: int | None = None
        self.model: dict[str, Modelled] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.context.__aexit__(None, None, None))
        finally:
            self.loop.close()

    # model

    def live(self, uuid: str) -> Modelled | None:
        entry = self.model.get(uuid)
        if entry is None or entry.released or entry.expires_at <= self.now:
            return None
        return entry

    def holding(self, target_id: int | None = None) -> int:
        return sum(
            1
            for uuid, entry in self.model.items()
            if self.live(uuid) and entry.holds and target_id in (None, entry.target_id)
        )

    def reason(self, target_id: int) -> str | None:
        if self.holding(target_id) >= self.caps[target_id]:
            return "capped:concurrency"
        if self.group_cap is not None and self.holding() >= self.group_cap:
            return "capped:group-1:concurrency"
        return None

    def cand(self, target_id: int) -> Candidate:
        g1 = group(1, concurrency=self.group_cap)
        return candidate(target_id, g1, concurrency=self.caps[target_id])

    # steps

    @initialize(
        caps=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 3)),
        group_cap=st.none() | st.integers(0, 4),
    )
    def setup(self, caps: tuple[int, int, int], group_cap: int | None) -> None:
        self.caps = dict(enumerate(caps, start=1))
        self.group_cap = group_cap

    @rule(
        target=uuids,
        pings=st.lists(
            st.tuples(
                st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=3, unique=True),
                st.booleans(),
                st.integers(1, 60),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def reserve(self, pings: list[tuple[list[int], bool, int]]) -> MultipleResults[str]:
        """A few pings in a row: each with its candidate order, `hold` and TTL."""
        return multiple(*(self.ping(order_of, hold, ttl) for order_of, hold, ttl in pings))

    def ping(self, order_of: list[int], hold: bool, ttl: int) -> str:
        # Expiry never falls on a whole second, so the model needs no view of the boundary.
        wanted = order(self.ns, *map(self.cand, order_of), now=self.now, ttl=ttl - 0.5, hold=hold)
        result = self.run(self.store.reserve(wanted))
        blocked: list[tuple[int, str]] = []
        chosen = None
        for target_id in order_of:
            reason = self.reason(target_id)
            if reason is None:
                chosen = target_id
                break
            blocked.append((target_id, reason))
        assert result.blocked == tuple(blocked)
        if chosen is None:
            assert result.status is ReserveStatus.NO_TARGET
            assert result.record is None
        else:
            assert result.status is ReserveStatus.RESERVED
            record = result.record
            assert record is not None
            assert (record.uuid, record.target_id, record.holds) == (wanted.uuid, chosen, hold)
            assert record.expires_at == wanted.expires_at
            self.model[wanted.uuid] = Modelled(chosen, wanted.expires_at, hold)
        return wanted.uuid

    @rule(uuid=uuids)
    def confirm(self, uuid: str) -> None:
        entry = self.model.get(uuid)
        subjects = self.cand(entry.target_id if entry else 1).subjects
        answer = self.run(self.store.hold(self.ns, uuid, subjects, self.now))
        live = self.live(uuid)
        if live is None:
            assert answer == (HoldStatus.UNKNOWN, None)
        elif live.holds:
            assert answer == (HoldStatus.HELD, None)
        elif (reason := self.reason(live.target_id)) is not None:
            assert answer == (HoldStatus.CAPPED, reason)
        else:
            assert answer == (HoldStatus.HELD, None)
            live.holds = True

    @rule()
    def confirm_every_live(self) -> None:
        """Confirm each live reservation in turn, oldest first (as a burst of confirmations)."""
        for uuid, entry in list(self.model.items()):
            if self.live(uuid) is not None and not entry.holds:
                self.confirm(uuid)

    @rule(uuid=uuids)
    def release(self, uuid: str) -> None:
        released = self.run(self.store.release(self.ns, uuid))
        entry, live = self.model.get(uuid), self.live(uuid)
        if live is not None:
            assert released is not None
            assert (released.uuid, released.target_id) == (uuid, live.target_id)
        elif entry is None or entry.released:
            assert released is None
        # An expired reservation never released: `release` takes no time, so either answer.
        if entry is not None:
            entry.released = True

    @rule(uuid=uuids)
    def get(self, uuid: str) -> None:
        record = self.run(self.store.get(self.ns, uuid, self.now))
        live = self.live(uuid)
        if live is None:
            assert record is None
        else:
            assert record is not None
            assert (record.uuid, record.target_id, record.holds) == (
                uuid,
                live.target_id,
                live.holds,
            )

    @rule(seconds=st.integers(0, 20))
    def advance(self, seconds: int) -> None:
        self.now += seconds

    @invariant()
    def caps_hold_and_the_store_agrees(self) -> None:
        for target_id, cap in self.caps.items():
            assert self.holding(target_id) <= cap
            probe = order(self.ns, self.cand(target_id), now=self.now, hold=False)
            result = self.run(self.store.reserve(probe))
            expected = self.reason(target_id)
            if expected is None:
                assert result.status is ReserveStatus.RESERVED
                self.run(self.store.release(self.ns, probe.uuid))
            else:
                assert result.status is ReserveStatus.NO_TARGET
                assert result.blocked == ((target_id, expected),)
        if self.group_cap is not None:
            assert self.holding() <= self.group_cap


def test_live_holding_reservations_never_exceed_caps(
    store_factory: StoreFactory, examples: Callable[[int], int]
) -> None:
    machine = type("Machine", (HoldingMachine,), {"factory": staticmethod(store_factory)})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples(100),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
