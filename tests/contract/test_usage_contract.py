"""The `HotState.usage` contract: what a cap subject holds, read on every store alike."""

from __future__ import annotations

from callbid.hotstate.protocol import HotState
from tests.contract.test_hotstate_contract import T0, candidate, order, reserved, target


async def test_a_fresh_subject_holds_nothing(store: HotState, ns: str) -> None:
    subject = target(1, concurrency=2, daily=5, hourly=3)

    (usage,) = await store.usage(ns, [subject], T0)

    assert (usage.key, usage.in_use, usage.pending) == ("t1", 0, 0)
    assert usage.counts == {cap.counter: 0 for cap in subject.periods}


async def test_a_held_reservation_is_in_use_and_pending_until_it_ends(
    store: HotState, ns: str
) -> None:
    held = order(ns, candidate(1, concurrency=2, daily=5), ttl=60)
    record = await reserved(store, held)
    subject, other = target(1, concurrency=2, daily=5), target(2, concurrency=1)

    mine, theirs = await store.usage(ns, [subject, other], T0 + 1)
    assert (mine.in_use, mine.pending) == (1, 1)
    assert mine.used(subject.periods[0].counter) == 1
    assert (theirs.in_use, theirs.pending) == (0, 0)

    (expired,) = await store.usage(ns, [subject], T0 + 61)
    assert (expired.in_use, expired.pending) == (0, 0)

    await store.release(ns, record.uuid)
    (released,) = await store.usage(ns, [subject], T0 + 1)
    assert released.in_use == 0


async def test_counted_calls_show_in_their_period(store: HotState, ns: str) -> None:
    subject = target(1, daily=5)
    counter = subject.periods[0].counter
    await store.restore_calls(ns, [], {counter: 3}, T0)

    (usage,) = await store.usage(ns, [subject], T0)

    assert usage.counts == {counter: 3}
    assert usage.used(counter) == 3


async def test_usage_changes_nothing(store: HotState, ns: str) -> None:
    subject = target(1, concurrency=1)
    for _ in range(3):
        await store.usage(ns, [subject], T0)

    await reserved(store, order(ns, candidate(1, concurrency=1)))
