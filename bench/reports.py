"""Reports over a month: `summarize()` on PostgreSQL over 30 days of reservations, from the raw
rows (nothing purged yet) and then from the report rollups after the purge job has run.

Empties the database given (`--database-url`; its public schema is dropped), migrates it,
copies in `--reservations` reservations spread over `--days` days up to now for one company
(4 campaigns, 10 publishers, 3 targets per campaign, a tenth refused with no target) and
`--calls` calls, all with COPY, and runs `ANALYZE`. It times every report (no grouping, then
each `GroupBy`) `--runs` times over the whole period from the raw rows; then runs the purge as
the service does (default 24 h retention: settled hours rolled up, older rows rolled up and
deleted), `VACUUM ANALYZE`, and times the same reports again. Prints both tables and, as the
last line, one JSON object:

    {"reservations": 1000000, "calls": 100000, "days": 30, "rollup_rows": ...,
     "fill_s": ..., "purge_s": ..., "report_ms_p50": ..., "report_ms_max": ...,
     "baseline_ms_p50": ..., "baseline_ms_max": ..., "speedup_p50": ..., "same_figures": true,
     "by_query": {...}}

`same_figures` says whether every report came to the same figures both ways (the period
starts on an hour, so counting purged reservations by their hour changes nothing). Exit
status 1 when it did not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from callbid.adapters.storage.db import migrate
from callbid.adapters.storage.rollups import floor_hour, purge_with_rollups
from callbid.service.reports import GroupBy, Report, summarize

DEFAULT_URL = os.environ.get(
    "CALLBID_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
COMPANY_ID = 1
CAMPAIGNS = 4
PUBLISHERS = 10
TARGETS_PER_CAMPAIGN = 3
TTL = timedelta(seconds=60)
RETENTION = timedelta(hours=24)
BATCH = 50_000
QUERIES: tuple[GroupBy | None, ...] = (None, *GroupBy)
RESERVATION_COLUMNS = (
    "uuid",
    "company_id",
    "campaign_id",
    "key",
    "api",
    "publisher_id",
    "tags",
    "status",
    "target_id",
    "matched_criteria",
    "holds",
    "subject_keys",
    "decision_log",
    "created_at",
    "expires_at",
    "confirmed_at",
    "claimed_at",
    "wiped_at",
)
CALL_COLUMNS = (
    "uuid",
    "company_id",
    "campaign_id",
    "call_sid",
    "dialect",
    "dialled_number",
    "publisher_id",
    "match",
    "strict",
    "tags",
    "status",
    "target_id",
    "legs",
    "holds",
    "subject_keys",
    "counters",
    "counted",
    "duplicate",
    "started_at",
    "converted",
    "payout",
    "revenue",
    "flow",
)


def reservation_record(rng: random.Random, at: datetime, now: datetime) -> tuple[Any, ...]:
    """One stored reservation created `at`: refused, wiped, claimed (some confirmed first),
    expired, or still live when `at + TTL` is after `now`."""
    campaign = rng.randrange(CAMPAIGNS)
    publisher = f"pub-{rng.randrange(PUBLISHERS)}"
    roll = rng.random()
    target: int | None = campaign * TARGETS_PER_CAMPAIGN + rng.randrange(TARGETS_PER_CAMPAIGN) + 1
    expires: datetime | None = at + TTL
    status, confirmed, claimed, wiped = "expired", None, None, None
    if roll < 0.1:
        status, target, expires = "no-target", None, None
    elif roll < 0.15:
        status, wiped = "wiped", at + timedelta(seconds=5)
    elif roll < 0.5:
        status, claimed = "claimed", at + timedelta(seconds=20)
        confirmed = at + timedelta(seconds=3) if roll < 0.3 else None
    elif expires is not None and expires > now:
        status = "reserved"
    return (
        str(uuid.UUID(int=rng.getrandbits(128))),
        COMPANY_ID,
        campaign + 1,
        "bench-key",
        "rtb",
        publisher,
        "{}",
        status,
        target,
        "[]",
        confirmed is not None,
        "[]",
        "[]",
        at,
        expires,
        confirmed,
        claimed,
        wiped,
    )


def call_record(rng: random.Random, at: datetime) -> tuple[Any, ...]:
    campaign = rng.randrange(CAMPAIGNS)
    converted = rng.random() < 0.3
    target = campaign * TARGETS_PER_CAMPAIGN + rng.randrange(TARGETS_PER_CAMPAIGN) + 1
    return (
        str(uuid.UUID(int=rng.getrandbits(128))),
        COMPANY_ID,
        campaign + 1,
        f"CA{rng.getrandbits(64):016x}",
        "twilio",
        "+12125550100",
        f"pub-{rng.randrange(PUBLISHERS)}",
        "claimed",
        False,
        "{}",
        "ended",
        target,
        "[]",
        False,
        "[]",
        "[]",
        True,
        False,
        at,
        converted,
        12.5 if converted else None,
        25.0 if converted else None,
        "[]",
    )


def instants(rng: random.Random, count: int, start: datetime, end: datetime) -> Iterator[datetime]:
    """`count` instants in `[start, end)`, in order (as traffic arrives)."""
    span = (end - start).total_seconds()
    for offset in sorted(rng.random() * span for _ in range(count)):
        yield start + timedelta(seconds=offset)


def batches(records: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def plain_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def reset(url: str) -> None:
    connection = await asyncpg.connect(plain_url(url))
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


async def fill(url: str, args: argparse.Namespace, now: datetime) -> None:
    """COPY the reservations and calls in, then ANALYZE."""
    rng = random.Random(args.seed)
    start = now - timedelta(days=args.days)
    connection = await asyncpg.connect(plain_url(url))
    try:
        made = (
            reservation_record(rng, at, now) for at in instants(rng, args.reservations, start, now)
        )
        for batch in batches(made):
            await connection.copy_records_to_table(
                "reservations", records=batch, columns=RESERVATION_COLUMNS
            )
        calls = (call_record(rng, at) for at in instants(rng, args.calls, start, now))
        for batch in batches(calls):
            await connection.copy_records_to_table("calls", records=batch, columns=CALL_COLUMNS)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def time_reports(
    sessions: async_sessionmaker[AsyncSession],
    period: tuple[datetime, datetime],
    now: datetime,
    runs: int,
) -> tuple[dict[str, list[float]], dict[str, Report]]:
    """Each report's durations (ms) over `runs` runs, and its last answer."""
    timings: dict[str, list[float]] = {}
    answers: dict[str, Report] = {}
    for group_by in QUERIES:
        name = group_by.value if group_by is not None else "total"
        for _ in range(runs):
            async with sessions() as session:
                began = time.perf_counter()
                answers[name] = await summarize(
                    session, COMPANY_ID, *period, now, group_by=group_by
                )
                timings.setdefault(name, []).append((time.perf_counter() - began) * 1000)
    return timings, answers


async def purge(sessions: async_sessionmaker[AsyncSession], url: str, now: datetime) -> int:
    """The purge job's transaction (as `maintenance.purge_once` runs it), then VACUUM ANALYZE;
    reservations deleted."""
    async with sessions.begin() as session:
        deleted = await purge_with_rollups(session, older_than=now - RETENTION, now=now)
    connection = await asyncpg.connect(plain_url(url))
    try:
        await connection.execute("VACUUM ANALYZE reservations")
        await connection.execute("VACUUM ANALYZE report_rollups")
    finally:
        await connection.close()
    return deleted


def same(first: dict[str, Report], second: dict[str, Report]) -> bool:
    def figures(report: Report) -> Any:
        groups = report.groups or {}
        return report.totals.as_dict(), {key: g.as_dict() for key, g in groups.items()}

    return all(figures(first[name]) == figures(second[name]) for name in first)


def stats(timings: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        name: {"p50": round(statistics.median(ms), 2), "max": round(max(ms), 2)}
        for name, ms in timings.items()
    }


def table(title: str, figures: dict[str, dict[str, float]], say: Any) -> None:
    say(f"{title}:")
    for name, ms in figures.items():
        say(f"  {name:<10} p50 {ms['p50']:9.2f} ms   max {ms['max']:9.2f} ms")


async def bench(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    period = (floor_hour(now - timedelta(days=args.days)), floor_hour(now) + timedelta(hours=1))
    began = time.perf_counter()
    await fill(args.database_url, args, now)
    fill_s = time.perf_counter() - began
    say(f"filled {args.reservations} reservations and {args.calls} calls in {fill_s:.1f} s")
    engine = create_async_engine(args.database_url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        raw_ms, raw = await time_reports(sessions, period, now, args.runs)
        table("raw rows (nothing purged)", stats(raw_ms), say)
        began = time.perf_counter()
        deleted = await purge(sessions, args.database_url, now)
        purge_s = time.perf_counter() - began
        async with sessions() as session:
            rollup_rows = int(await session.scalar(text("SELECT count(*) FROM report_rollups")))
        say(f"purge: {deleted} deleted, {rollup_rows} rollup rows, {purge_s:.1f} s")
        rolled_ms, rolled = await time_reports(sessions, period, now, args.runs)
        table("rollups (24 h retention)", stats(rolled_ms), say)
    finally:
        await engine.dispose()
    return summary(args, fill_s, purge_s, rollup_rows, raw_ms, rolled_ms, same(raw, rolled))


def summary(
    args: argparse.Namespace,
    fill_s: float,
    purge_s: float,
    rollup_rows: int,
    raw_ms: dict[str, list[float]],
    rolled_ms: dict[str, list[float]],
    same_figures: bool,
) -> dict[str, Any]:
    def every(timings: dict[str, list[float]]) -> list[float]:
        return [ms for runs in timings.values() for ms in runs]

    p50, base_p50 = statistics.median(every(rolled_ms)), statistics.median(every(raw_ms))
    return {
        "reservations": args.reservations,
        "calls": args.calls,
        "days": args.days,
        "rollup_rows": rollup_rows,
        "fill_s": round(fill_s, 1),
        "purge_s": round(purge_s, 1),
        "report_ms_p50": round(p50, 2),
        "report_ms_max": round(max(every(rolled_ms)), 2),
        "baseline_ms_p50": round(base_p50, 2),
        "baseline_ms_max": round(max(every(raw_ms)), 2),
        "speedup_p50": round(base_p50 / p50, 1),
        "same_figures": same_figures,
        "by_query": {"rollups": stats(rolled_ms), "raw": stats(raw_ms)},
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=DEFAULT_URL, help="a PostgreSQL database it empties"
    )
    parser.add_argument("--reservations", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each report")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-only", action="store_true", help="print only the JSON line")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.database_url.startswith("postgresql+asyncpg://"):
        print("--database-url must be postgresql+asyncpg://", file=sys.stderr)
        return 2
    say = (lambda _line: None) if args.json_only else (lambda line: print(line, flush=True))
    asyncio.run(reset(args.database_url))
    migrate(args.database_url)
    result = asyncio.run(bench(args, say))
    print(json.dumps(result), flush=True)
    return 0 if result["same_figures"] else 1


if __name__ == "__main__":
    sys.exit(main())
