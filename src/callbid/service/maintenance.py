"""Background upkeep: expire reservations past their TTL, purge old RTB records, and rebuild
the in-process hot state from the database at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.outage import is_outage
from callbid.adapters.storage.db import create_engine, session_factory
from callbid.adapters.storage.reservations import (
    EXPIRE,
    live_reservations,
    purge,
    recent_callers,
)
from callbid.adapters.storage.tables import Reservation
from callbid.domain.reserve import LiveReservation, namespace
from callbid.hotstate.memory import MemoryHotState
from callbid.runtime import Runtime
from callbid.settings import Settings

log = logging.getLogger(__name__)


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


async def restore_memory_state(
    store: MemoryHotState, sessions: async_sessionmaker[AsyncSession], now: datetime
) -> int:
    """Put every committed live reservation and recent caller back into a fresh store."""
    async with sessions() as session:
        rows = await live_reservations(session, now)
        seen = await recent_callers(session, now)
    stamp = now.timestamp()
    restored = 0
    for row in rows:
        restored += store.load(namespace(row.company_id), [live_record(row)], stamp)
    for entry in seen:
        key = f"seen:{entry.campaign_id}:{entry.caller_number}"
        store.load_seen(
            namespace(entry.company_id),
            key,
            entry.seen_at.timestamp(),
            entry.keep_until.timestamp(),
        )
    return restored


async def purge_once(runtime: Runtime) -> int:
    """Delete RTB records older than the retention period; returns reservations deleted."""
    now = runtime.clock()
    older_than = now - timedelta(hours=runtime.settings.retention_hours)
    async with runtime.sessions.begin() as session:
        return await purge(session, older_than=older_than, now=now)


async def sweep_once(runtime: Runtime) -> None:
    """Mark reservations past `expires_at` expired and drop them from an in-process store.

    The update goes through the engine's own connection, not the group writer: it touches
    every reservation that expired since the last sweep, and on the writer's connection (the
    event loop's, on SQLite) that stalled pings for milliseconds once a second."""
    now = runtime.clock()
    async with runtime.sessions.begin() as session:
        await session.execute(EXPIRE, {"b_now": now})
    if isinstance(runtime.store, MemoryHotState):
        runtime.store.prune(now.timestamp())


class Maintenance:
    """Runs the sweeper and the purge on their intervals until stopped."""

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
        async with sessions.begin() as session:
            return await purge(
                session, older_than=now - timedelta(hours=settings.retention_hours), now=now
            )
    finally:
        await engine.dispose()
