"""The `HotState` contract for calls: claiming reservations, holding targets while dialled and
connected, counting in period caps, ending. Same stores, same rules as the reservation suite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule, run_state_machine_as_test

from callbid.domain.reserve import CallHold, HoldStatus, ReserveStatus, period_counters
from callbid.hotstate.protocol import HotState
from tests.contract.test_hotstate_contract import (
    CALLER,
    INBOUND,
    T0,
    HoldingMachine,
    StoreFactory,
    candidate,
    group,
    order,
    refused,
    reserved,
    room,
    target,
)

UNTIL = T0 + 3600
OTHER = "+15557654321"


async def test_a_call_claims_its_reservation_once(store: HotState, ns: str) -> None:
    record = await reserved(store, order(ns, candidate(1)))

    claimed = await store.claim(ns, "CA1", INBOUND, CALLER, T0 + 5, UNTIL)

    assert claimed == record
    assert await store.get(ns, record.uuid, T0 + 5) is None
    assert await store.claim(ns, "CA2", INBOUND, CALLER, T0 + 6, UNTIL) is None


async def test_the_same_call_claiming_again_gets_the_same_record(store: HotState, ns: str) -> None:
    record = await reserved(store, order(ns, candidate(1)))

    first = await store.claim(ns, "CA1", INBOUND, CALLER, T0 + 5, UNTIL)
    again = await store.claim(ns, "CA1", INBOUND, CALLER, T0 + 7, UNTIL)

    assert first == again == record


async def test_concurrent_claims_grant_one(store: HotState, ns: str) -> None:
    await reserved(store, order(ns, candidate(1)))

    answers = await asyncio.gather(
        *(store.claim(ns, f"CA{i}", INBOUND, CALLER, T0 + 1, UNTIL) for i in range(20))
    )

    assert sum(answer is not None for answer in answers) == 1


async def test_other_caller_other_number_or_expired_claims_nothing(
    store: HotState, ns: str
) -> None:
    record = await reserved(store, order(ns, candidate(1), ttl=60))

    assert await store.claim(ns, "CA1", INBOUND, OTHER, T0 + 1, UNTIL) is None
    assert await store.claim(ns, "CA2", "+18005550199", CALLER, T0 + 1, UNTIL) is None
    assert await store.claim(ns, "CA3", INBOUND, None, T0 + 1, UNTIL) is None
    assert await store.claim(ns, "CA4", INBOUND, CALLER, T0 + 60, UNTIL) is None
    assert await store.get(ns, record.uuid, T0 + 59) is not None


async def test_a_released_reservation_is_not_claimed(store: HotState, ns: str) -> None:
    record = await reserved(store, order(ns, candidate(1)))
    await store.release(ns, record.uuid)

    assert await store.claim(ns, "CA1", INBOUND, CALLER, T0 + 1, UNTIL) is None


async def test_a_pool_number_matches_by_number_alone(store: HotState, ns: str) -> None:
    pool = ("+18885550190", "+18885550191")
    record = await reserved(store, order(ns, candidate(1), caller=None, pool=pool))

    claimed = await store.claim(ns, "CA1", record.inbound_number, OTHER, T0 + 1, UNTIL)

    assert claimed is not None
    assert claimed.uuid == record.uuid
    # The pool number is free again for the next ping.
    again = await reserved(store, order(ns, candidate(1), caller=None, pool=pool, now=T0 + 2))
    assert again.inbound_number == record.inbound_number


async def test_claiming_ends_the_shield(store: HotState, ns: str) -> None:
    await reserved(store, order(ns, candidate(1), shield="s:caller"))
    await store.claim(ns, "CA1", INBOUND, CALLER, T0 + 1, UNTIL)

    again = await store.reserve(order(ns, candidate(1), shield="s:caller", now=T0 + 2))

    assert again.status is ReserveStatus.RESERVED


async def test_a_holding_reservation_passes_its_slot_to_the_call(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1)
    record = await reserved(store, order(ns, cand, hold=True, ttl=10))
    await store.claim(ns, "CA1", INBOUND, CALLER, T0 + 1, UNTIL)

    # Long past the reservation's TTL the call still holds the only slot.
    assert await room(store, ns, cand, now=T0 + 100) == 0
    held = await store.dial(ns, "CA1", record.target_id, cand.subjects, T0 + 100, UNTIL)
    assert held == (HoldStatus.HELD, None)
    ended = await store.end_call(ns, "CA1", False, T0 + 200)
    assert ended is not None
    assert ended.target_id == 1
    assert await room(store, ns, cand, now=T0 + 200) == 1


async def test_dial_holds_a_slot_until_the_call_ends(store: HotState, ns: str) -> None:
    cand = candidate(1, group(1, concurrency=5), concurrency=2)

    assert await store.dial(ns, "CA1", 1, cand.subjects, T0, UNTIL) == (HoldStatus.HELD, None)
    assert await store.dial(ns, "CA2", 1, cand.subjects, T0, UNTIL) == (HoldStatus.HELD, None)
    assert await store.dial(ns, "CA3", 1, cand.subjects, T0, UNTIL) == (
        HoldStatus.CAPPED,
        "capped:concurrency",
    )
    assert await room(store, ns, cand) == 0
    await refused(store, order(ns, cand, now=T0 + 1))

    await store.end_call(ns, "CA1", False, T0 + 2)
    assert await room(store, ns, cand, now=T0 + 2) == 1


async def test_a_call_holds_one_target_at_a_time(store: HotState, ns: str) -> None:
    one, two = candidate(1, concurrency=1), candidate(2, concurrency=1)
    await store.dial(ns, "CA1", 1, one.subjects, T0, UNTIL)

    assert await store.dial(ns, "CA1", 2, two.subjects, T0 + 1, UNTIL) == (HoldStatus.HELD, None)

    assert await room(store, ns, one, now=T0 + 1) == 1
    assert await room(store, ns, two, now=T0 + 1) == 0


async def test_a_capped_dial_lets_go_of_the_previous_target(store: HotState, ns: str) -> None:
    one, two = candidate(1, concurrency=1), candidate(2, concurrency=0)
    await store.dial(ns, "CA1", 1, one.subjects, T0, UNTIL)

    assert (await store.dial(ns, "CA1", 2, two.subjects, T0, UNTIL))[0] is HoldStatus.CAPPED

    assert await room(store, ns, one) == 1
    assert await store.end_call(ns, "CA1", True, T0) is None


async def test_a_call_past_its_until_holds_nothing(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=1)
    await store.dial(ns, "CA1", 1, cand.subjects, T0, T0 + 100)

    assert await room(store, ns, cand, now=T0 + 99) == 0
    assert await room(store, ns, cand, now=T0 + 100) == 1


async def test_a_counted_call_counts_in_its_periods_after_it_ends(store: HotState, ns: str) -> None:
    cand = candidate(1, daily=2)
    await store.dial(ns, "CA1", 1, cand.subjects, T0, UNTIL)
    assert await store.count_call(ns, "CA1", T0 + 1) is True
    assert await store.count_call(ns, "CA1", T0 + 2) is False  # once
    await store.end_call(ns, "CA1", True, T0 + 3)

    assert await room(store, ns, cand, now=T0 + 4) == 1
    await store.dial(ns, "CA2", 1, cand.subjects, T0 + 5, UNTIL)
    await store.end_call(ns, "CA2", True, T0 + 6)
    assert await room(store, ns, cand, now=T0 + 7) == 0


async def test_an_uncounted_call_leaves_no_trace(store: HotState, ns: str) -> None:
    cand = candidate(1, hourly=1, lifetime=1)
    await store.dial(ns, "CA1", 1, cand.subjects, T0, UNTIL)
    # Pending while live: a period cap sees it.
    assert await room(store, ns, cand, now=T0 + 1) == 0

    await store.end_call(ns, "CA1", False, T0 + 2)

    assert await room(store, ns, cand, now=T0 + 3) == 1


async def test_counting_at_the_end_counts_once(store: HotState, ns: str) -> None:
    cand = candidate(1, lifetime=2)
    await store.dial(ns, "CA1", 1, cand.subjects, T0, UNTIL)
    await store.count_call(ns, "CA1", T0)

    ended = await store.end_call(ns, "CA1", True, T0 + 1)

    assert ended is not None
    assert ended.counted
    assert await room(store, ns, cand, now=T0 + 2) == 1


async def test_restore_puts_back_holds_and_counts(store: HotState, ns: str) -> None:
    cand = candidate(1, concurrency=2, lifetime=5)
    counters = period_counters(cand.subjects)
    live = CallHold("CA1", 1, tuple(s.key for s in cand.subjects), counters, UNTIL)
    over = CallHold("CA2", 1, tuple(s.key for s in cand.subjects), counters, T0 - 1)

    restored = await store.restore_calls(ns, [live, over], {"t1:life": 3}, T0)

    assert restored == 1
    assert await room(store, ns, cand) == 1  # lifetime 5: 3 counted + 1 pending + 1
    assert await store.restore_calls(ns, [live], {"t1:life": 1}, T0) == 0
    ended = await store.end_call(ns, "CA1", True, T0 + 1)
    assert ended is not None
    assert ended.counted
    assert await room(store, ns, cand, now=T0 + 1) == 1  # 4 counted


@dataclass
class ModelledCall:
    target_id: int
    until: float


class CallsMachine(HoldingMachine):
    """The holding machine with calls mixed in: unmatched calls dialling targets, calls
    claiming reservations (taking over their slots), calls moving on and ending. Live calls
    and holding reservations together never exceed a cap, and the store agrees."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, ModelledCall] = {}
        self.call_count = 0

    def holding(self, target_id: int | None = None) -> int:
        reservations = super().holding(target_id)
        calls = sum(
            1
            for call in self.calls.values()
            if call.until > self.now and target_id in (None, call.target_id)
        )
        return reservations + calls

    def new_call(self) -> str:
        self.call_count += 1
        return f"CA{self.call_count}"

    @rule(target_id=st.sampled_from([1, 2, 3]), length=st.integers(1, 40))
    def dial(self, target_id: int, length: int) -> None:
        self.place(self.new_call(), target_id, length)

    def place(self, call_key: str, target_id: int, length: int) -> None:
        previous = self.calls.pop(call_key, None)
        until = self.now + length - 0.5
        answer = self.run(
            self.store.dial(
                self.ns, call_key, target_id, self.cand(target_id).subjects, self.now, until
            )
        )
        if previous is not None and previous.target_id == target_id:
            assert answer == (HoldStatus.HELD, None)
            self.calls[call_key] = previous
            return
        expected = self.reason(target_id)
        if expected is None:
            assert answer == (HoldStatus.HELD, None)
            self.calls[call_key] = ModelledCall(target_id, until)
        else:
            assert answer == (HoldStatus.CAPPED, expected)

    @rule(target_id=st.sampled_from([1, 2, 3]), length=st.integers(1, 40))
    def move_on(self, target_id: int, length: int) -> None:
        """A live call's target did not answer: the next one is dialled."""
        live = [key for key, call in self.calls.items() if call.until > self.now]
        if live:
            self.place(live[0], target_id, length)

    @rule(length=st.integers(1, 40))
    def claim(self, length: int) -> None:
        """A call arrives for the oldest live reservation (all share caller and number)."""
        live = [uuid for uuid in self.model if self.live(uuid) is not None]
        call_key = self.new_call()
        until = self.now + length - 0.5
        claimed = self.run(self.store.claim(self.ns, call_key, INBOUND, CALLER, self.now, until))
        if not live:
            assert claimed is None
            return
        assert claimed is not None
        assert claimed.uuid in live
        entry = self.model[claimed.uuid]
        entry.released = True
        if entry.holds:
            self.calls[call_key] = ModelledCall(entry.target_id, until)

    @rule()
    def end(self) -> None:
        if self.calls:
            call_key = next(iter(self.calls))
            call = self.calls.pop(call_key)
            ended = self.run(self.store.end_call(self.ns, call_key, True, self.now))
            if call.until > self.now:
                assert ended is not None
                assert ended.target_id == call.target_id


def test_live_calls_and_reservations_never_exceed_caps(
    store_factory: StoreFactory, examples: Callable[[int], int]
) -> None:
    machine = type("Machine", (CallsMachine,), {"factory": staticmethod(store_factory)})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples(60),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.parametrize("count", [True, False])
async def test_end_of_an_unknown_call_is_none(store: HotState, ns: str, count: bool) -> None:
    assert await store.end_call(ns, "CA404", count, T0) is None
    assert await store.count_call(ns, "CA404", T0) is False
    assert target(1).key == "t1"
