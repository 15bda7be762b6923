"""Group commit: many requests' durable writes in one transaction, each caller awaiting its own.

A ping is acknowledged only after its rows are committed, yet the database sees one
transaction per batch instead of one per request. A batch that fails is retried job by job, so
one bad job fails alone. How a batch reaches the database is the executor's business: SQLite
gets a dedicated thread with its own connection (one thread hop per batch); other databases
go through SQLAlchemy's async engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Protocol

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncEngine

from callbid.adapters.outage import is_outage, storage_unavailable
from callbid.domain.errors import Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteOp:
    """One statement with its parameters. Within a batch, ops run by `rank` (inserts before
    the updates that may touch their rows), in submission order within a rank."""

    rank: int
    statement: Executable
    params: dict[str, Any]


class BatchExecutor(Protocol):
    """Commits a list of ops in one transaction, or raises and commits nothing."""

    async def commit(self, ops: Sequence[WriteOp]) -> None: ...

    async def close(self) -> None: ...


def runs(ops: Sequence[WriteOp]) -> list[tuple[Executable, list[dict[str, Any]]]]:
    """Ops sorted by rank (stable) and grouped into runs of one statement, for executemany."""
    ordered = sorted(ops, key=lambda op: op.rank)
    return [
        (stmt, [op.params for op in run])
        for stmt, run in groupby(ordered, key=lambda op: op.statement)
    ]


class EngineExecutor:
    """Batches through SQLAlchemy's async engine (PostgreSQL, or any dialect)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def commit(self, ops: Sequence[WriteOp]) -> None:
        async with self._engine.begin() as conn:
            for statement, params in runs(ops):
                await conn.execute(statement, params if len(params) > 1 else params[0])

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class _Job:
    ops: Sequence[WriteOp]
    done: asyncio.Future[None]


class GroupWriter:
    """One background task committing, batch after batch, the jobs submitted meanwhile.

    Jobs wait in a plain list and the task sleeps on one future while there are none: an
    `asyncio.Queue` and a shielded future per job cost an extra event-loop round per ping.
    """

    def __init__(self, executor: BatchExecutor, *, batch_max: int = 512) -> None:
        self._executor = executor
        self._batch_max = batch_max
        self._pending: list[_Job] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="group-writer")

    async def stop(self) -> None:
        """Commit everything already submitted, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake()
        await self._task
        self._task = None
        await self._executor.close()

    async def write(self, *ops: WriteOp) -> None:
        """Return once `ops` are committed together; Unavailable when the database refused.

        A caller cancelled while waiting leaves its job in place: it is committed all the same,
        and the settling skips the cancelled future.
        """
        if self._task is None:
            raise Unavailable("storage writer is not running")
        done = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(ops, done))
        self._wake()
        await done

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _run(self) -> None:
        while self._pending or not self._stopping:
            if not self._pending:
                self._wakeup = asyncio.get_running_loop().create_future()
                await self._wakeup
                continue
            batch = self._pending[: self._batch_max]
            del self._pending[: self._batch_max]
            await self._commit(batch)

    async def _commit(self, batch: list[_Job]) -> None:
        try:
            await self._executor.commit([op for job in batch for op in job.ops])
        except Exception as exc:
            if len(batch) == 1 or is_outage(exc):
                log.exception("durable write of %d jobs failed", len(batch))
                for job in batch:
                    _settle(job, storage_unavailable())
                return
            for job in batch:
                await self._commit([job])
            return
        self.batches += 1
        self.jobs += len(batch)
        for job in batch:
            _settle(job, None)


def _settle(job: _Job, error: Exception | None) -> None:
    if job.done.done():
        return
    if error is None:
        job.done.set_result(None)
    else:
        job.done.set_exception(error)
