"""What one ping's hot-state call costs: the in-process store against the Redis store.

Runs `--calls` reserve orders shaped like a demo ping (three candidates with daily and
concurrency caps, a ping shield, caller recency) through each store, one at a time and with
`--concurrency` in flight, on one event loop (uvloop), and prints microseconds per call of
wall time, which is also the caller's CPU on a single-threaded loop when Redis answers on
another core. Last line: JSON `{"memory_us", "redis_us", "redis_concurrent_us", "ratio"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

import uvloop

from callbid.domain.model import Caps, Schedule
from callbid.domain.reserve import Candidate, PayoutOption, ReserveOrder, cap_subject
from callbid.hotstate.memory import MemoryHotState
from callbid.hotstate.protocol import HotState
from callbid.hotstate.redis import RedisHotState, connect_redis

REDIS_URL = "redis://127.0.0.1:6379/11"  # emptied first


def make_order(namespace: str, n: int, now: float) -> ReserveOrder:
    at = datetime.fromtimestamp(now, UTC)
    candidates = tuple(
        Candidate(
            target_id,
            (
                cap_subject(
                    f"t{target_id}", "", Caps(concurrency=1000, daily=10**9), Schedule(), at
                ),
            ),
            0,
            (12.5,),
        )
        for target_id in (1, 2, 3)
    )
    caller = f"+1212{200 + n // 10_000 % 700:03d}{n % 10_000:04d}"
    return ReserveOrder(
        namespace=namespace,
        uuid=str(uuid4()),
        now=now,
        expires_at=now + 15,
        hold=False,
        caller_number=caller,
        inbound_number="+18885550100",
        pool=(),
        rate=None,
        shield_key=f"k:{caller}",
        seen_key=f"seen:1:{caller}",
        seen_ttl=86_400,
        publisher=None,
        options=(PayoutOption(1, 0, 90, 30.0),),
        candidates=candidates,
    )


async def sequential(store: HotState, namespace: str, calls: int) -> float:
    now = time.time()
    orders = [make_order(namespace, n, now) for n in range(calls)]
    started = time.perf_counter()
    for reserve_order in orders:
        await store.reserve(reserve_order)
    return (time.perf_counter() - started) / calls * 1e6


async def concurrent(store: HotState, namespace: str, calls: int, width: int) -> float:
    now = time.time()
    orders = [make_order(namespace, n, now) for n in range(calls)]
    started = time.perf_counter()
    for start in range(0, calls, width):
        await asyncio.gather(*(store.reserve(o) for o in orders[start : start + width]))
    return (time.perf_counter() - started) / calls * 1e6


async def measure(args: argparse.Namespace) -> dict[str, float]:
    memory = MemoryHotState()
    await sequential(memory, "warm", 1000)
    memory_us = await sequential(memory, "bench-memory", args.calls)
    client = connect_redis(args.redis_url, timeout=5.0, pool_size=32)
    await client.flushdb()
    redis = RedisHotState(client)
    try:
        await sequential(redis, "warm", 1000)
        redis_us = await sequential(redis, "bench-redis", args.calls)
        redis_concurrent_us = await concurrent(redis, "bench-redis-c", args.calls, args.concurrency)
    finally:
        await client.flushdb()
        await redis.close()
    return {
        "memory_us": round(memory_us, 1),
        "redis_us": round(redis_us, 1),
        "redis_concurrent_us": round(redis_concurrent_us, 1),
        "ratio": round(redis_us / memory_us, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--redis-url", default=REDIS_URL, help="a Redis database it empties")
    args = parser.parse_args(argv)
    result = uvloop.run(measure(args))
    print(f"in-process store      {result['memory_us']:8.1f} µs per reserve")
    print(f"Redis, one at a time  {result['redis_us']:8.1f} µs per reserve")
    print(
        f"Redis, {args.concurrency} in flight   {result['redis_concurrent_us']:8.1f} µs per reserve"
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
