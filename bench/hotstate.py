"""What one ping's hot-state call costs: Redis's own CPU per script, and the caller's time.

`--store redis` runs a fixed workload through the Redis store: `--calls` reserve orders shaped
like a demo ping (three candidates with concurrency and daily caps, a ping shield, caller
recency; `--held` adds a hold, a group and a publisher cap), then a claim of each reservation
as its call arrives. It reads what Redis itself spent from `INFO commandstats` (the delta of
`cmdstat_evalsha` around each phase: the whole script, the commands it calls included) and
how many commands the scripts called. `--script both` (the default) runs the frozen scripts
of `bench/baseline/` first and the package's scripts second, through the same harness and
the same Redis, `--rounds` times alternating, and reports the median of each.

`--store memory` times the in-process store; `--store both` adds it to the Redis figures.

Last line, JSON: `{"redis_us_per_reserve", "redis_us_per_claim", "pings_per_redis_core",
"redis_calls_per_reserve", "baseline_us_per_reserve", "baseline_us_per_claim", ...}`, where
`pings_per_redis_core` is 10^6 / `redis_us_per_reserve`: how many pings one Redis core can
reserve per second when it does nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import uvloop
from redis.asyncio import Redis

from callbid.domain.model import Caps, Schedule
from callbid.domain.reserve import (
    EPSILON,
    Candidate,
    PayoutOption,
    ReserveOrder,
    ReserveResult,
    ReserveStatus,
    cap_subject,
)
from callbid.hotstate.memory import MemoryHotState
from callbid.hotstate.protocol import HotState
from callbid.hotstate.redis import RedisHotState, connect_redis
from callbid.hotstate.redis_wire import decode_result, prefix

sys.path.insert(0, str(Path(__file__).parent))
import baseline  # bench/baseline: the scripts before the rewrite

SCRIPT_COMMANDS = ("evalsha", "eval", "fcall")


class BaselineRedisHotState(RedisHotState):
    """The Redis store with the frozen scripts and order encoding of `bench/baseline/`."""

    def __init__(self, client: Redis) -> None:
        super().__init__(client)
        self._reserve = client.register_script(baseline.script_source("reserve"))
        self._claim = client.register_script(baseline.script_source("claim"))

    async def reserve(self, order: ReserveOrder) -> ReserveResult:
        keys = [prefix(order.namespace)]
        args: list[str | bytes] = [baseline.encode_order(order), repr(EPSILON)]
        return decode_result(await self._pipeline.call(self._reserve, keys, args))


def make_order(namespace: str, n: int, now: float, held: bool) -> ReserveOrder:
    at = datetime.fromtimestamp(now, UTC)
    caps = Caps(concurrency=10**6, daily=10**9)
    candidates = tuple(
        Candidate(
            target_id,
            (cap_subject(f"t{target_id}", "", caps, Schedule(), at),)
            + (
                (cap_subject(f"g{target_id % 2}", "group-1", caps, Schedule(), at),) if held else ()
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
        hold=held,
        caller_number=caller,
        inbound_number="+18885550100",
        pool=(),
        rate=None,
        shield_key=f"k:{caller}",
        seen_key=f"seen:1:{caller}",
        seen_ttl=86_400,
        publisher=cap_subject("p1", "publisher", caps, Schedule(), at) if held else None,
        options=(PayoutOption(1, 0, 90, 30.0),),
        candidates=candidates,
    )


async def command_stats(client: Redis) -> dict[str, tuple[int, int]]:
    """{command: (calls, usec)} from `INFO commandstats`."""
    info: dict[str, Any] = await client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(stat["calls"]), int(stat["usec"]))
        for name, stat in info.items()
    }


@dataclass(frozen=True)
class Spent:
    us_per_call: float  # Redis CPU in the scripts, per call
    commands_per_call: float  # commands the scripts called, per call


def spent(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], n: int) -> Spent:
    def delta(name: str) -> tuple[int, int]:
        calls, usec = after.get(name, (0, 0))
        calls0, usec0 = before.get(name, (0, 0))
        return calls - calls0, usec - usec0

    script_calls = sum(delta(name)[0] for name in SCRIPT_COMMANDS)
    script_usec = sum(delta(name)[1] for name in SCRIPT_COMMANDS)
    if script_calls != n:
        raise SystemExit(
            f"hotstate: expected {n} script calls, Redis counted {script_calls}: another"
            " client uses this Redis server, or a script was loaded during the run"
        )
    inner = sum(delta(name)[0] for name in after if name not in SCRIPT_COMMANDS and name != "info")
    return Spent(script_usec / n, inner / n)


async def in_flight(calls: Sequence[Any], width: int) -> list[Any]:
    """Await the coroutines `width` at a time, as concurrent pings do (one pipeline each)."""
    results: list[Any] = []
    for start in range(0, len(calls), width):
        results += await asyncio.gather(*calls[start : start + width])
    return results


async def redis_round(
    client: Redis, store: RedisHotState, args: argparse.Namespace
) -> dict[str, Spent]:
    """Reserve `--calls` orders, then claim each; what Redis spent on each phase."""
    await client.flushdb()
    now = time.time()
    orders = [make_order("bench", n, now, args.held) for n in range(args.calls)]
    before = await command_stats(client)
    results: list[ReserveResult] = await in_flight(
        [store.reserve(o) for o in orders], args.concurrency
    )
    middle = await command_stats(client)
    if any(r.status is not ReserveStatus.RESERVED for r in results):
        raise SystemExit("hotstate: a reserve of the fixed workload was not granted")
    claims = [
        store.claim("bench", f"call-{n}", "+18885550100", o.caller_number, now + 1, now + 600)
        for n, o in enumerate(orders)
    ]
    claimed = await in_flight(claims, args.concurrency)
    after = await command_stats(client)
    if any(c is None for c in claimed):
        raise SystemExit("hotstate: a claim of the fixed workload found no reservation")
    return {"reserve": spent(before, middle, args.calls), "claim": spent(middle, after, args.calls)}


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A Redis server of the bench's own on a Unix socket, so that no other client's
    commands reach its counters; stopped and removed afterwards."""
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("hotstate: redis-server not found (Debian: apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="callbid-hotstate-") as workdir:
        socket = Path(workdir) / "redis.sock"
        process = subprocess.Popen(
            [
                server,
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
                "--logfile",
                str(Path(workdir) / "redis.log"),
            ],
        )
        try:
            deadline = time.monotonic() + 10
            while not socket.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("hotstate: the private redis-server did not start")
                time.sleep(0.02)
            yield f"unix://{socket}"
        finally:
            process.terminate()
            process.wait(10)


async def measure_redis(args: argparse.Namespace, url: str) -> dict[str, float]:
    client = connect_redis(url, timeout=5.0, pool_size=32)
    stores: dict[str, RedisHotState] = {}
    if args.script in ("old", "both"):
        stores["baseline"] = BaselineRedisHotState(client)
    if args.script in ("new", "both"):
        stores["redis"] = RedisHotState(client)
    rounds: dict[str, list[dict[str, Spent]]] = {name: [] for name in stores}
    try:
        for store in stores.values():  # warm-up: every script loaded before counting
            order = make_order("warm", 0, time.time(), args.held)
            await store.reserve(order)
            await store.claim("warm", "c", "+18885550100", order.caller_number, order.now, 1e10)
        for _ in range(args.rounds):
            for name, store in stores.items():
                rounds[name].append(await redis_round(client, store, args))
    finally:
        await client.flushdb()
        await client.aclose()
    result: dict[str, float] = {}
    for name, measured in rounds.items():
        reserve = statistics.median(r["reserve"].us_per_call for r in measured)
        claim = statistics.median(r["claim"].us_per_call for r in measured)
        result[f"{name}_us_per_reserve"] = round(reserve, 1)
        result[f"{name}_us_per_claim"] = round(claim, 1)
        result[f"{name}_calls_per_reserve"] = round(measured[-1]["reserve"].commands_per_call, 1)
        result[f"{name}_calls_per_claim"] = round(measured[-1]["claim"].commands_per_call, 1)
        spread = [round(r["reserve"].us_per_call, 1) for r in measured]
        print(f"{name:>8}: µs per reserve by round {spread}", flush=True)
    main_name = "redis" if "redis" in rounds else "baseline"
    result["pings_per_redis_core"] = round(1e6 / result[f"{main_name}_us_per_reserve"])
    if len(rounds) == 2:
        result["reserve_ratio"] = round(
            result["baseline_us_per_reserve"] / result["redis_us_per_reserve"], 2
        )
    return result


async def wall_us(store: HotState, namespace: str, calls: int, width: int) -> float:
    now = time.time()
    orders = [make_order(namespace, n, now, False) for n in range(calls)]
    started = time.perf_counter()
    await in_flight([store.reserve(o) for o in orders], width)
    return (time.perf_counter() - started) / calls * 1e6


async def measure_memory(args: argparse.Namespace) -> dict[str, float]:
    memory = MemoryHotState()
    await wall_us(memory, "warm", 1000, 1)
    return {"memory_us": round(await wall_us(memory, "bench-memory", args.calls, 1), 1)}


def report(result: dict[str, float], args: argparse.Namespace) -> None:
    if "memory_us" in result:
        print(f"in-process store             {result['memory_us']:8.1f} µs per reserve (wall)")
    for name, title in (("baseline", "Redis, baseline scripts"), ("redis", "Redis, scripts")):
        if f"{name}_us_per_reserve" not in result:
            continue
        print(
            f"{title:<28} {result[f'{name}_us_per_reserve']:8.1f} µs of Redis CPU per reserve "
            f"({result[f'{name}_calls_per_reserve']} commands), "
            f"{result[f'{name}_us_per_claim']:.1f} per claim "
            f"({result[f'{name}_calls_per_claim']} commands)"
        )
    print(f"one Redis core: {result['pings_per_redis_core']:,.0f} pings/s")
    summary = {
        "redis_us_per_reserve": result.get("redis_us_per_reserve"),
        "redis_us_per_claim": result.get("redis_us_per_claim"),
        "pings_per_redis_core": result["pings_per_redis_core"],
    } | result
    print(json.dumps(summary), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("redis", "memory", "both"), default="redis")
    parser.add_argument("--script", choices=("old", "new", "both"), default="both")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--held", action="store_true", help="orders that hold caps")
    parser.add_argument(
        "--redis-url",
        help="a Redis database it empties, alone on its server (default: a private redis-server)",
    )
    args = parser.parse_args(argv)
    result: dict[str, float] = {}
    if args.store in ("memory", "both"):
        result |= uvloop.run(measure_memory(args))
    if args.store in ("redis", "both"):
        with contextlib.ExitStack() as stack:
            url = args.redis_url or stack.enter_context(private_redis())
            result |= uvloop.run(measure_redis(args, url))
    else:
        print(json.dumps(result), flush=True)
        return 0
    report(result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
