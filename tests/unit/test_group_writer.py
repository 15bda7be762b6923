"""The group writer: one commit per batch, one bad job fails alone, an outage fails the batch
at once (never job by job)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from callbid.adapters.storage.writer import GroupWriter, WriteOp
from callbid.domain.errors import Unavailable


def op(name: str) -> WriteOp:
    return WriteOp(0, text("SELECT 1"), {"name": name})


class Recorder:
    """An executor that records each commit's job names and fails as told."""

    def __init__(self, fail: type[Exception] | None = None, bad: str | None = None) -> None:
        self.commits: list[list[str]] = []
        self.fail = fail
        self.bad = bad

    async def commit(self, ops: Sequence[WriteOp]) -> None:
        names = [o.params["name"] for o in ops]
        self.commits.append(names)
        await asyncio.sleep(0)
        if self.fail is OperationalError:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))
        if self.bad in names:
            raise IntegrityError("INSERT", {}, ValueError("duplicate key"))

    async def close(self) -> None:
        return None


async def run_jobs(executor: Recorder, names: list[str]) -> list[BaseException | None]:
    writer = GroupWriter(executor)
    writer.start()
    try:
        results = await asyncio.gather(
            *(writer.write(op(n)) for n in names), return_exceptions=True
        )
    finally:
        await writer.stop()
    return list(results)


async def test_jobs_submitted_together_commit_in_one_batch() -> None:
    executor = Recorder()
    assert await run_jobs(executor, ["a", "b", "c"]) == [None, None, None]
    assert executor.commits == [["a", "b", "c"]]


async def test_a_bad_job_fails_alone() -> None:
    executor = Recorder(bad="b")
    results = await run_jobs(executor, ["a", "b", "c"])
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], Unavailable)
    assert executor.commits == [["a", "b", "c"], ["a"], ["b"], ["c"]]


async def test_an_outage_fails_the_whole_batch_at_once() -> None:
    executor = Recorder(fail=OperationalError)
    results = await run_jobs(executor, ["a", "b", "c"])
    assert all(isinstance(r, Unavailable) for r in results)
    assert all(r.retry_after == 1.0 for r in results if isinstance(r, Unavailable))
    assert executor.commits == [["a", "b", "c"]]


async def test_writing_to_a_stopped_writer_is_unavailable() -> None:
    writer = GroupWriter(Recorder())
    with pytest.raises(Unavailable):
        await writer.write(op("a"))
