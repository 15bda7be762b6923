"""The in-process store's upkeep outside the protocol: loading after a restart and pruning."""

from __future__ import annotations

from callbid.domain.reserve import LiveReservation
from callbid.hotstate.memory import MemoryHotState


def record(
    uuid: str, expires_at: float, *, shield: str | None = None, pool: str | None = None
) -> LiveReservation:
    return LiveReservation(
        uuid=uuid,
        target_id=1,
        inbound_number=pool or "+18885550100",
        caller_number="+12125550123",
        payout=1.0,
        seconds=30,
        revenue=2.0,
        criterion_id=None,
        expires_at=expires_at,
        holds=True,
        subject_keys=("t1",),
        shield_key=shield,
        pool_number=pool,
    )


async def test_prune_drops_only_what_expired_and_frees_its_entries() -> None:
    store = MemoryHotState()
    loaded = store.load(
        "ns",
        [
            record("a", 100.0, shield="s-a", pool="+18885550190"),
            record("b", 200.0, shield="s-b"),
            record("old", 5.0),
        ],
        now=10.0,
    )
    assert loaded == 2
    assert store.prune(150.0) == 1
    assert await store.get("ns", "a", 150.0) is None
    assert await store.get("ns", "b", 150.0) is not None
    assert await store.release("ns", "a") is None
    assert store.prune(150.0) == 0
    assert store.prune(250.0) == 1
    assert await store.release("ns", "b") is None


async def test_released_records_are_skipped_by_prune() -> None:
    store = MemoryHotState()
    store.load("ns", [record("a", 100.0)], now=0.0)
    assert await store.release("ns", "a") is not None
    assert store.prune(1000.0) == 0


def test_recent_callers_expire() -> None:
    store = MemoryHotState()
    store.load_seen("ns", "seen:1:+12125550123", seen_at=0.0, keep_until=50.0)
    assert store._last_seen("ns", "seen:1:+12125550123", 10.0) == 0.0
    store.prune(60.0)
    assert store._last_seen("ns", "seen:1:+12125550123", 10.0) is None
