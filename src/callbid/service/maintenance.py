"""Background upkeep: expire reservations past their TTL, purge old RTB records, and rebuild
the in-process hot state from the database at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.outage import is_outage
from callbid.adapters.storage.db import create_engine, session_factory
from callbid.adapters.storage.deliveries import purge_deliveries
from callbid.adapters.storage.reservations import live_reservations, recent_callers
from callbid.adapters.storage.rollups import purge_with_rollups
from callbid.adapters.storage.tables import Reservation
from callbid.domain.reserve import LiveReservation, namespace
from callbid.hotstate.memory import MemoryHotState
from callbid.hotstate.redis import RedisHotState
from callbid.runtime import Runtime
from callbid.service.calls import close_overdue, restore_calls
from callbid.service.pixels import expire_with_pixels
from callbid.service.users import purge_sessions
from callbid.settings import Settings

log = logging.getLogger(__name__)

RESTORE_CHUNK = 1000  # records per script call: each call blocks Redis while it runs
#: How often Redis's restore marks are checked (see `restore_check`).
RESTORE_CHECK_SECONDS = 5.0


def live_record(row: Reservation) -> LiveReservation:
    """The hot-state record of a stored live reservation."""
    assert row.target_id is not None
    assert row.inbound_number is not None
    assert row.expires_at is not None
    return LiveReservation(
        uuid=row.uuid,
        target_id=row.target_id,
        inbound_number=row.inbound_number,
        caller_number=row.caller_number,
        payout=row.payout or 0.0,
        seconds=row.seconds or 0,
        revenue=row.revenue or 0.0,
        criterion_id=row.criterion_id,
        expires_at=row.expires_at.timestamp(),
        holds=row.holds,
        subject_keys=tuple(row.subject_keys or ()),
        shield_key=row.shield_key,
        pool_number=row.pool_number,
    )


def by_namespace(rows: Sequence[Reservation]) -> dict[str, list[LiveReservation]]:
    """Stored live reservations as hot-state records, by hot-state namespace."""
    grouped: dict[str, list[LiveReservation]] = {}
    for row in rows:
        grouped.setdefault(namespace(row.company_id), []).append(live_record(row))
    return grouped


async def restore_memory_state(
    store: MemoryHotState, sessions: async_sessionmaker[AsyncSession], now: datetime
) -> int:
    """Put every committed live reservation and recent caller back into a fresh store."""
    async with sessions() as session:
        rows = await live_reservations(session, now)
        seen = await recent_callers(session, now)
    stamp = now.timestamp()
    restored = 0
    for ns, records in by_namespace(rows).items():
        restored += store.load(ns, records, stamp)
    for entry in seen:
        key = f"seen:{entry.campaign_id}:{entry.caller_number}"
        store.load_seen(
            namespace(entry.company_id),
            key,
            entry.seen_at.timestamp(),
            entry.keep_until.timestamp(),
        )
    return restored


async def restore_redis_state(
    store: RedisHotState, sessions: async_sessionmaker[AsyncSession], now: datetime
) -> int | None:
    """After Redis lost its data (restarted without persistence), put every committed live
    reservation back, so that their buyers' slots, shields and pool numbers hold again. One
    worker does it; None when nothing was to be done. Caller recency and rate limits are not
    restored."""
    if not await store.claim_restore():
        return None
    try:
        async with sessions() as session:
            rows = await live_reservations(session, now)
        stamp = now.timestamp()
        restored = 0
        for ns, records in by_namespace(rows).items():
            for start in range(0, len(records), RESTORE_CHUNK):
                chunk = records[start : start + RESTORE_CHUNK]
                restored += await store.restore(ns, chunk, stamp)
    except BaseException:
        await store.restore_abandoned()  # let the next attempt (any worker's) try again
        raise
    calls = await restore_calls(store, sessions, now)
    await store.restore_done()
    log.info("restored %d live reservations and %d live calls into Redis", restored, calls)
    return restored


async def purge_once(runtime: Runtime) -> int:
    """Delete RTB records and settled pixel deliveries older than the retention period, the
    reservations' counts kept in the report rollups, and expired console sessions; returns
    reservations deleted."""
    now = runtime.clock()
    older_than = now - timedelta(hours=runtime.settings.retention_hours)
    async with runtime.sessions.begin() as session:
        await purge_sessions(session, now)
        await purge_deliveries(await session.connection(), older_than=older_than)
        return await purge_with_rollups(session, older_than=older_than, now=now)


async def sweep_once(runtime: Runtime) -> None:
    """Mark reservations past `expires_at` expired, queueing their `expired` pixels in the
    same transaction, and drop them from an in-process store.

    The update goes through the engine's own connection, not the group writer: it touches
    every reservation that expired since the last sweep, and on the writer's connection (the
    event loop's, on SQLite) that stalled pings for milliseconds once a second."""
    now = runtime.clock()
    async with runtime.sessions.begin() as session:
        await expire_with_pixels(session, now)
    if isinstance(runtime.store, MemoryHotState):
        runtime.store.prune(now.timestamp())
    await close_overdue(runtime)


async def restore_check(runtime: Runtime) -> None:
    """Refill Redis if it lost the live reservations without the configuration bus noticing
    (the bus refills on every resubscription, which a restart of its Redis forces): a
    cluster master that came back empty while the bus's channel lives on another, or a
    flushed database."""
    if isinstance(runtime.store, RedisHotState):
        await restore_redis_state(runtime.store, runtime.sessions, runtime.clock())


class Maintenance:
    """Runs the sweeper, the purge and, on Redis, the restore check on their intervals until
    stopped."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        settings = self._runtime.settings
        self._tasks = [
            asyncio.create_task(
                self._every(settings.sweep_interval_seconds, sweep_once), name="sweeper"
            ),
            asyncio.create_task(
                self._every(settings.purge_interval_seconds, purge_once), name="purge"
            ),
        ]
        if isinstance(self._runtime.store, RedisHotState):
            self._tasks.append(
                asyncio.create_task(
                    self._every(RESTORE_CHECK_SECONDS, restore_check), name="restore-check"
                )
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _every(self, seconds: float, job: Callable[[Runtime], Awaitable[object]]) -> None:
        """Run `job` every `seconds`; with several workers on Redis, one of them per round."""
        leases = self._runtime.leases
        while True:
            await asyncio.sleep(seconds)
            try:
                if leases is not None and not await leases.take(job.__name__, seconds):
                    continue
                await job(self._runtime)
            except Exception as exc:
                if is_outage(exc):
                    log.warning("maintenance job %s skipped: %r", job.__name__, exc)
                    continue
                log.exception("maintenance job %s failed", job.__name__)


async def purge_database(settings: Settings) -> int:
    """The purge on a short-lived engine, for the command line."""
    engine = create_engine(settings)
    try:
        sessions = session_factory(engine)
        now = datetime.now(UTC)
        older_than = now - timedelta(hours=settings.retention_hours)
        async with sessions.begin() as session:
            await purge_deliveries(await session.connection(), older_than=older_than)
            return await purge_with_rollups(session, older_than=older_than, now=now)
    finally:
        await engine.dispose()
