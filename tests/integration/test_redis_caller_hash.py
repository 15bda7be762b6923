"""The Redis store keeps one hash per caller (`who:<caller>`, see common.lua's keep_who): it
outlives the longest reservation it matches, and its dead match fields are dropped when its TTL
is topped up, so a caller who calls all year does not grow a key without end. The scripts
need Redis 7.0 (EXPIRE ... NX), and an older server is named."""

from __future__ import annotations

import pytest

from callbid.hotstate.redis import RedisHotState
from callbid.hotstate.redis_wire import GRACE, prefix, who_key
from tests.contract.conftest import new_namespace
from tests.contract.test_hotstate_contract import CALLER, INBOUND, T0, candidate, order, reserved

pytestmark = pytest.mark.redis

PRUNE_EVERY = 300  # as common.lua


async def test_the_callers_hash_lives_as_long_as_its_longest_match_and_drops_dead_ones(
    store: RedisHotState,
) -> None:
    ns, cand = new_namespace(), candidate(1, concurrency=10)
    client, key = store._client, who_key(prefix(ns), CALLER)

    first = await reserved(store, order(ns, cand, now=T0, ttl=60, hold=False))
    assert await client.hkeys(key) == [f"m:{INBOUND}:{first.uuid}".encode()]
    assert GRACE + 60 <= await client.ttl(key) <= GRACE + 60 + PRUNE_EVERY

    # Two hours on, a longer reservation tops the TTL up and drops the first's dead match.
    later = T0 + 7200
    second = await reserved(store, order(ns, cand, now=later, ttl=1000, hold=False))
    assert await client.hkeys(key) == [f"m:{INBOUND}:{second.uuid}".encode()]
    topped = await client.ttl(key)
    assert GRACE + 1000 < topped <= GRACE + 1000 + PRUNE_EVERY

    # A shorter one needs no more life: the TTL is left as it is, both matches are kept.
    third = await reserved(store, order(ns, cand, now=later + 10, ttl=60, hold=False))
    assert sorted(await client.hkeys(key)) == sorted(
        f"m:{INBOUND}:{r.uuid}".encode() for r in (second, third)
    )
    assert topped - 2 <= await client.ttl(key) <= topped


async def test_a_redis_older_than_the_scripts_need_is_named(
    store: RedisHotState, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await store.version_problem() is None  # the machine's own Redis

    async def old_server(section: str) -> dict[str, str]:
        return {"redis_version": "6.2.14"}

    monkeypatch.setattr(store._client, "info", old_server)
    assert await store.version_problem() == (
        "Redis 6.2.14 is too old: callbid needs Redis 7.0 or newer"
    )
