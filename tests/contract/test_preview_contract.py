"""The `HotState.preview` contract: it answers what `reserve` would, and changes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from callbid.domain.reserve import RateRule, ReserveOrder, ReserveStatus
from callbid.hotstate.protocol import HotState
from tests.contract.test_hotstate_contract import (
    CALLER,
    T0,
    candidate,
    option,
    order,
    publisher,
    reserved,
    room,
)

SHIELD = "shield:k1:" + CALLER
SEEN = "seen:c1:" + CALLER


async def assert_preview_matches(store: HotState, wanted: ReserveOrder) -> None:
    """Preview twice, then reserve: the three answers agree, record and all."""
    first = await store.preview(wanted)
    second = await store.preview(wanted)
    actual = await store.reserve(wanted)

    assert first == second == actual


async def test_preview_of_a_free_target_is_the_reservation_reserve_makes(
    store: HotState, ns: str
) -> None:
    wanted = order(ns, candidate(1, concurrency=1), shield=SHIELD, seen=SEEN, seen_ttl=60)

    preview = await store.preview(wanted)

    assert preview.status is ReserveStatus.RESERVED
    assert preview.record is not None
    assert preview.record.target_id == 1
    assert await store.get(ns, wanted.uuid, T0) is None
    assert await reserved(store, wanted) == preview.record


async def test_preview_names_the_same_blocked_and_target(store: HotState, ns: str) -> None:
    full = candidate(1, concurrency=1)
    await reserved(store, order(ns, full))

    await assert_preview_matches(store, order(ns, full, candidate(2, daily=3)))


@pytest.mark.parametrize("probe", [False, True])
async def test_preview_of_every_candidate_blocked_matches(
    store: HotState, ns: str, probe: bool
) -> None:
    full = candidate(1, concurrency=1)
    await reserved(store, order(ns, full))

    await assert_preview_matches(store, replace(order(ns, full), probe=probe))


async def test_preview_sees_the_shield(store: HotState, ns: str) -> None:
    await reserved(store, order(ns, candidate(1), shield=SHIELD))

    await assert_preview_matches(store, order(ns, candidate(2), shield=SHIELD))


async def test_preview_sees_duplicates_and_recency(store: HotState, ns: str) -> None:
    await reserved(store, order(ns, candidate(1), seen=SEEN, seen_ttl=3600))
    later = T0 + 10

    await assert_preview_matches(
        store, order(ns, candidate(2, dedupe=60), candidate(3), now=later, seen=SEEN)
    )
    await assert_preview_matches(
        store, order(ns, candidate(4), now=later, seen=SEEN, options=(option(window=60),))
    )


async def test_preview_sees_publisher_caps_pool_numbers_and_unpriced(
    store: HotState, ns: str
) -> None:
    pub = publisher(concurrency=1)
    pool = ("+18005550001",)
    await reserved(store, order(ns, candidate(1), pub=pub, pool=pool, caller=None))

    await assert_preview_matches(store, order(ns, candidate(2), pub=pub))
    await assert_preview_matches(store, order(ns, candidate(3), pool=pool, caller=None))
    await assert_preview_matches(store, order(ns, candidate(4, payouts=(None,))))


async def test_preview_of_a_stored_order_is_its_record(store: HotState, ns: str) -> None:
    wanted = order(ns, candidate(1))
    record = await reserved(store, wanted)

    preview = await store.preview(wanted)

    assert preview.status is ReserveStatus.RESERVED
    assert preview.record == record


async def test_previews_take_no_capacity(store: HotState, ns: str) -> None:
    one = candidate(1, daily=1)
    for _ in range(3):
        assert (await store.preview(order(ns, one))).status is ReserveStatus.RESERVED

    assert await room(store, ns, one) == 1
    await reserved(store, order(ns, one))
    assert (await store.reserve(order(ns, one))).status is ReserveStatus.NO_TARGET


async def test_previews_take_no_concurrency_shield_pool_or_recency(
    store: HotState, ns: str
) -> None:
    pool = ("+18005550001",)
    one = candidate(1, concurrency=1, dedupe=60)
    wanted = order(ns, one, pool=pool, shield=SHIELD, seen=SEEN, seen_ttl=60)
    for attempt in range(3):
        await store.preview(replace(wanted, uuid=f"{wanted.uuid}-{attempt}"))

    record = await reserved(store, wanted)

    assert record.pool_number == pool[0]
    assert await store.claim(ns, "call-1", pool[0], CALLER, T0, T0 + 600) == record


async def test_previews_take_no_rate(store: HotState, ns: str) -> None:
    rule = RateRule("rl:k1:pub1", per_second=1.0, burst=1)
    probe = replace(order(ns, candidate(1), rate=rule), probe=True)
    for _ in range(3):
        assert (await store.preview(probe)).status is ReserveStatus.AVAILABLE
        assert (await store.preview(order(ns, candidate(1), rate=rule))).record is not None

    await reserved(store, order(ns, candidate(1), rate=rule))
    limited = order(ns, candidate(1), rate=rule)
    preview = await store.preview(limited)
    assert preview.status is ReserveStatus.RATE_LIMITED
    assert preview == await store.reserve(limited)
