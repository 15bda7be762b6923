"""The Redis store's script pipeline: calls made together leave as one pipeline, survive
Redis forgetting its scripts, and one caller giving up never disturbs the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from callbid.adapters.outage import NotReplicated
from callbid.domain.errors import Unavailable
from callbid.domain.reserve import ReserveStatus
from callbid.hotstate.redis import RedisHotState, connect_redis
from tests.contract.conftest import new_namespace
from tests.contract.test_hotstate_contract import candidate, order
from tests.integration.conftest import REDIS_URL as URL
from tests.support.redis_sentinel import RedisSentinel

pytestmark = pytest.mark.redis


async def evalsha_calls(client: Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_calls_leave_as_one_pipeline(
    store: RedisHotState, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, cand = new_namespace(), candidate(1, concurrency=5)
    await store.reserve(order(ns, cand, hold=False))  # scripts loaded
    client = store._client
    pipelines = 0
    real_pipeline = client.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(client, "pipeline", counting_pipeline)
    probe = Redis.from_url(URL)
    try:
        before = await evalsha_calls(probe)
        results = await asyncio.gather(*(store.reserve(order(ns, cand)) for _ in range(20)))
        after = await evalsha_calls(probe)
    finally:
        await probe.aclose()
    statuses = [r.status for r in results]
    assert statuses.count(ReserveStatus.RESERVED) == 5
    assert statuses.count(ReserveStatus.NO_TARGET) == 15
    assert pipelines == 1
    assert after - before == 20  # each script ran once: no retry, no reload


async def test_scripts_are_reloaded_after_redis_forgot_them(store: RedisHotState) -> None:
    ns, cand = new_namespace(), candidate(1, concurrency=3)
    flusher = Redis.from_url(URL)
    try:
        await flusher.script_flush()
    finally:
        await flusher.aclose()
    results = await asyncio.gather(*(store.reserve(order(ns, cand)) for _ in range(6)))
    statuses = [r.status for r in results]
    assert statuses.count(ReserveStatus.RESERVED) == 3
    assert statuses.count(ReserveStatus.NO_TARGET) == 3


async def test_a_cancelled_caller_does_not_disturb_its_batch(store: RedisHotState) -> None:
    ns, cand = new_namespace(), candidate(1, concurrency=10)
    calls = [asyncio.ensure_future(store.reserve(order(ns, cand))) for _ in range(5)]
    calls[2].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(done[2], asyncio.CancelledError)
    kept = [r for i, r in enumerate(done) if i != 2]
    assert all(getattr(r, "status", None) is ReserveStatus.RESERVED for r in kept)


async def test_writes_fewer_replicas_confirmed_answer_unavailable_and_a_retry_finds_them() -> None:
    ns, cand = new_namespace(), candidate(1, concurrency=3)
    client = connect_redis(URL, timeout=1.0, pool_size=4)
    waiting = RedisHotState(client, replicas_ack=1, wait_ms=20)
    plain = RedisHotState(connect_redis(URL, timeout=1.0, pool_size=4))
    try:
        reserve = order(ns, cand)
        with pytest.raises(Unavailable) as refused:  # this Redis has no replica at all
            await waiting.reserve(reserve)
        assert isinstance(refused.value.__cause__, NotReplicated)
        previews = await asyncio.gather(*(waiting.preview(order(ns, cand)) for _ in range(2)))
        assert {p.status for p in previews} == {ReserveStatus.RESERVED}  # reads wait for none
        # The refused write did happen on the primary: the same uuid again answers it.
        again = await plain.reserve(reserve)
        assert again.record is not None
        assert again.record.uuid == reserve.uuid
    finally:
        await waiting.close()
        await plain.close()


async def command_calls(client: Redis, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


@pytest.mark.sentinel
async def test_on_sentinel_each_writing_batch_waits_for_a_replica_once(
    redis_sentinel: RedisSentinel,
) -> None:
    client = connect_redis(redis_sentinel.url, timeout=1.0, pool_size=2)
    hot = RedisHotState(client, replicas_ack=1, wait_ms=1000)
    primary = Redis(port=redis_sentinel.master_port())
    ns, cand = new_namespace(), candidate(1, concurrency=5)
    try:
        # A burst larger than the pool queues for a connection instead of failing.
        assert len(await asyncio.gather(*(client.incr(f"{ns}:n") for _ in range(50)))) == 50
        await primary.script_flush()  # this deployment's own: no one else's scripts
        before = await command_calls(primary, "wait")
        await hot.reserve(order(ns, cand))  # its script is lost: the batch, then its re-run
        assert await command_calls(primary, "wait") == before + 2
        results = await asyncio.gather(*(hot.reserve(order(ns, cand)) for _ in range(8)))
        assert [r.status for r in results].count(ReserveStatus.RESERVED) == 4
        assert await command_calls(primary, "wait") == before + 3
        await hot.preview(order(ns, cand))
        assert await command_calls(primary, "wait") == before + 3  # a read waits for none
    finally:
        await primary.aclose()
        await hot.close()
