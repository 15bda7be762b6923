"""Race many worker processes for one capped buyer and count what they granted.

Starts `callbid serve --workers N` on PostgreSQL and Redis (with `--cluster`, a local 3-master
Redis Cluster it starts from `redis-server` on free ports and tears down), builds a campaign
whose only buyer has a concurrency cap of `--cap` behind a key that counts reservations against
caps, opens `--pings` connections at once and fires one ping with a distinct caller on each. Exactly
`--cap` pings may be granted; the last line is JSON `{"granted", "cap", "errors", ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg

from rtb import (
    LOCALHOST,
    POSTGRES_SERVER,
    BenchError,
    Say,
    callbid_json,
    core_split,
    fresh_stores,
    positive,
    running_server,
    tail,
)

BENCH_DATABASE = "callbid_race"
REDIS_URL = "redis://127.0.0.1:6379/13"
CONNECT_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 60.0
FIRST_CALLER = 2_025_550_000


# ---------------------------------------------------------------- stores


async def stored_reserved(postgres_server: str, database: str, campaign_id: int) -> int:
    """Reservations the database holds as granted, for a cross-check of the answers."""
    conn = await asyncpg.connect(f"{postgres_server}/{database}")
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM reservations WHERE campaign_id = $1 AND status = 'reserved'",
            campaign_id,
        )
        return int(found)
    finally:
        await conn.close()


# ---------------------------------------------------------------- server and campaign


def company_token(env: dict[str, str]) -> str:
    return str(callbid_json(["company", "race"], env, None)["admin_token"])


def admin(base: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            created: dict[str, Any] = json.loads(answer.read())
            return created
    except urllib.error.HTTPError as exc:
        raise BenchError(f"POST {path} answered {exc.code}: {exc.read()[:300]!r}") from exc


@dataclass(frozen=True)
class Campaign:
    id: int
    key: str


def build_campaign(base: str, token: str, cap: int) -> Campaign:
    """One buyer open around the clock with a concurrency cap, a key counting reservations
    against caps and a TTL long enough that nothing expires during the race."""
    target = admin(
        base,
        token,
        "/targets",
        {"name": "only buyer", "destination": "+12125550100", "concurrency_cap": cap},
    )
    campaign = admin(base, token, "/campaigns", {"name": "race", "target_ids": [target["id"]]})
    admin(
        base, token, "/tracking-numbers", {"campaign_id": campaign["id"], "number": "+18885550199"}
    )
    admin(base, token, "/conversion-criteria", {"campaign_id": campaign["id"], "payout": 10})
    key = admin(
        base,
        token,
        "/rtb-keys",
        {"campaign_id": campaign["id"], "ttl_seconds": 600, "count_on_reserved": True},
    )
    return Campaign(campaign["id"], key["key"])


# ---------------------------------------------------------------- the race


@dataclass
class Outcome:
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


def ping_request(port: int, key: str, caller: int) -> bytes:
    body = urlencode(
        {"key": key, "publisher_id": "racer", "caller_number": f"+1{caller}", "caller_zip": "10001"}
    ).encode()
    head = (
        f"POST /rtbs.json HTTP/1.1\r\nHost: {LOCALHOST}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def one_ping(
    port: int, request: bytes, go: asyncio.Event, connected: asyncio.Semaphore, out: Outcome
) -> None:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(LOCALHOST, port), CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        out.errors[f"connect: {type(exc).__name__}"] += 1
        connected.release()
        return
    connected.release()
    try:
        await go.wait()
        started = time.perf_counter()
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
        out.latencies_ms.append((time.perf_counter() - started) * 1000)
        head, _, body = raw.partition(b"\r\n\r\n")
        code = int(head.split(b" ", 2)[1])
        out.codes[code] += 1
        status = json.loads(body).get("status", "?") if code == 200 else "failed"
        out.statuses[str(status)] += 1
        if code != 200:
            out.errors[f"HTTP {code}"] += 1
    except (OSError, TimeoutError, ValueError, IndexError) as exc:
        out.errors[f"ping: {type(exc).__name__}"] += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def race(port: int, key: str, pings: int) -> Outcome:
    """Open every connection first, then send every ping at once."""
    out, go = Outcome(), asyncio.Event()
    connected = asyncio.Semaphore(0)
    tasks = [
        asyncio.create_task(
            one_ping(port, ping_request(port, key, FIRST_CALLER + i), go, connected, out)
        )
        for i in range(pings)
    ]
    for _ in range(pings):
        await connected.acquire()
    go.set()
    await asyncio.gather(*tasks)
    return out


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=positive, default=4)
    parser.add_argument("--pings", type=positive, default=2000)
    parser.add_argument("--cap", type=positive, default=7)
    parser.add_argument(
        "--postgres",
        default=POSTGRES_SERVER,
        help="PostgreSQL server; the --database is dropped and created on it",
    )
    parser.add_argument("--database", default=BENCH_DATABASE, help="the bench's own database")
    parser.add_argument("--redis-url", default=REDIS_URL, help="a Redis database it empties")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="race on a local 3-master Redis Cluster of its own instead of --redis-url",
    )
    parser.add_argument("--json-only", action="store_true")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, say: Say) -> dict[str, Any]:
    if not args.cluster:
        return race_on(args, args.redis_url, say)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support
    from tests.support.redis_cluster import ClusterError, running_cluster

    with tempfile.TemporaryDirectory(prefix="callbid-race-cluster-") as tmp:
        say("starting a local 3-master Redis Cluster")
        try:
            with running_cluster(Path(tmp)) as cluster:
                return race_on(args, cluster.url, say) | {"cluster_masters": cluster.masters}
        except ClusterError as exc:
            raise BenchError(str(exc)) from exc


def race_on(args: argparse.Namespace, redis_url: str, say: Say) -> dict[str, Any]:
    env = {**os.environ, **fresh_stores(args.postgres, args.database, redis_url)}
    env["CALLBID_SEED_DEMO"] = "false"
    token = company_token(env)
    say(f"starting {args.workers} workers on PostgreSQL and Redis")
    with running_server("redis", args.workers, core_split(args.workers)[0], env) as server:
        campaign = build_campaign(server.base_url, token, args.cap)
        port = int(urlsplit(server.base_url).port or 0)
        say(f"racing {args.pings} pings for a cap of {args.cap}")
        started = time.monotonic()
        out = asyncio.run(race(port, campaign.key, args.pings))
        elapsed = time.monotonic() - started
        stored = asyncio.run(stored_reserved(args.postgres, args.database, campaign.id))
        log = server.stderr
        if server.proc.poll() is not None:
            raise BenchError(f"server died:\n{tail(log)}")
        complaints = Counter(
            line[:200]
            for line in log.read_text(errors="replace").splitlines()
            if line.strip() and not line.startswith(("INFO", " ")) and '"level":"info"' not in line
        )
    return {
        "granted": out.statuses["reserved"],
        "cap": args.cap,
        "errors": sum(out.errors.values()),
        "stored": stored,
        "no_target": out.statuses["no-target"],
        "workers": args.workers,
        "pings": args.pings,
        "seconds": round(elapsed, 2),
        "p50_ms": round(percentile(out.latencies_ms, 0.5), 1),
        "p99_ms": round(percentile(out.latencies_ms, 0.99), 1),
        "error_kinds": dict(out.errors),
        "server_complaints": dict(complaints.most_common(5)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    say = Say(args.json_only)
    try:
        result = run(args, say)
    except BenchError as exc:
        print(f"race: {exc}", file=sys.stderr)
        return 1
    if not args.json_only:
        for name in ("pings", "workers", "granted", "stored", "no_target", "errors"):
            print(f"{name:>10}: {result[name]}")
        print(
            f"{'answered':>10}: in {result['seconds']} s, p50 {result['p50_ms']} ms, "
            f"p99 {result['p99_ms']} ms"
        )
    print(json.dumps(result), flush=True)
    exact = result["granted"] == result["stored"] == result["cap"]
    return 0 if exact and result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
