"""The Redis store's script pipeline: calls made together leave as one pipeline, survive
Redis forgetting its scripts, and one caller giving up never disturbs the others."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from callbid.domain.reserve import ReserveStatus
from callbid.hotstate.redis import RedisHotState, connect_redis
from tests.contract.conftest import new_namespace
from tests.contract.test_hotstate_contract import candidate, order

pytestmark = pytest.mark.redis

#: The contract suite's database, which both empty.
URL = os.environ.get("CALLBID_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def store() -> AsyncIterator[RedisHotState]:
    client = connect_redis(URL, timeout=1.0, pool_size=4)
    await client.flushdb()
    hot = RedisHotState(client)
    yield hot
    await hot.close()


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
