"""One contract for every batch executor (SQLite's and PostgreSQL's): rows read back through
SQLAlchemy exactly as written, updates and upserts apply in rank order, and a failing batch
commits nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from callbid.adapters.storage.postgres_writer import PostgresExecutor
from callbid.adapters.storage.reservations import ReservationWrites
from callbid.adapters.storage.sqlite_writer import SqliteExecutor
from callbid.adapters.storage.tables import Base, CallerSeen, Reservation
from callbid.adapters.storage.writer import BatchExecutor
from tests.conftest import POSTGRES_URL, reset_postgres

AT = datetime(2026, 11, 23, 15, 0, 15, 412000, tzinfo=UTC)


@dataclass
class Backend:
    engine: AsyncEngine
    executor: BatchExecutor
    writes: ReservationWrites


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "batches.db"
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        executor: BatchExecutor = SqliteExecutor(path)
    else:
        await reset_postgres(POSTGRES_URL)
        engine = create_async_engine(POSTGRES_URL)
        executor = PostgresExecutor(engine)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield Backend(engine, executor, ReservationWrites(request.param))
    finally:
        await executor.close()
        await engine.dispose()


def reservation(uuid: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "uuid": uuid,
        "company_id": 1,
        "campaign_id": 2,
        "key": "6f1c0c3e-3b9e-4a8e-9a57-0e6f3f7f6a10",
        "api": "rtb",
        "publisher_id": "pub-1",
        "caller_number": "+12125550123",
        "tags": {"caller_zip": "10001", "caller_state": "NY", "note": "ünïcode"},
        "status": "reserved",
        "info": None,
        "owner_info": "selected",
        "matched_criteria": [3, 4],
        "created_at": AT,
        "target_id": 7,
        "criterion_id": 3,
        "payout": 12.5,
        "seconds": 90,
        "revenue": 30.0,
        "inbound_number": "+18885550100",
        "pool_number": None,
        "holds": False,
        "subject_keys": [],
        "shield_key": "k:+12125550123",
        "expires_at": AT + timedelta(seconds=15),
        "confirmed_at": None,
        "claimed_at": None,
        "wiped_at": None,
        "decision_log": [{"position": 1, "target_id": 7, "outcome": "selected"}],
    }
    row.update(changes)
    return row


async def stored(backend: Backend, uuid: str) -> Reservation | None:
    async with backend.engine.connect() as conn:
        result = await conn.execute(select(Reservation).where(Reservation.uuid == uuid))
        found = result.one_or_none()
    if found is None:
        return None
    return Reservation(**found._asdict())


async def test_rows_read_back_as_written(backend: Backend) -> None:
    writes = backend.writes
    first, second = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    await backend.executor.commit(
        [
            writes.created(reservation(first)),
            writes.created(reservation(second, status="no-target", target_id=None, payout=None)),
            writes.seen(1, 2, "+12125550123", AT, AT + timedelta(days=1)),
        ]
    )
    row = await stored(backend, first)
    assert row is not None
    assert row.tags == {"caller_zip": "10001", "caller_state": "NY", "note": "ünïcode"}
    assert row.decision_log == [{"position": 1, "target_id": 7, "outcome": "selected"}]
    assert row.matched_criteria == [3, 4]
    assert (row.created_at, row.expires_at) == (AT, AT + timedelta(seconds=15))
    assert row.payout == 12.5
    assert row.holds is False
    other = await stored(backend, second)
    assert other is not None
    assert (other.status, other.target_id, other.payout) == ("no-target", None, None)
    async with backend.engine.connect() as conn:
        seen = (await conn.execute(select(CallerSeen))).one()
    assert (seen.caller_number, seen.keep_until) == ("+12125550123", AT + timedelta(days=1))


async def test_updates_and_upserts_apply_after_the_inserts_of_their_batch(
    backend: Backend,
) -> None:
    writes, uuid = backend.writes, "00000000-0000-4000-8000-000000000003"
    later = AT + timedelta(seconds=5)
    await backend.executor.commit(
        [
            writes.confirmed(uuid, later, ["t:7", "g:1"]),  # submitted first, runs last
            writes.created(reservation(uuid)),
            writes.seen(1, 2, "+12125550123", AT, AT + timedelta(hours=1)),
            writes.seen(1, 2, "+12125550123", later, later + timedelta(hours=1)),
        ]
    )
    row = await stored(backend, uuid)
    assert row is not None
    assert (row.status, row.confirmed_at, row.holds) == ("confirmed", later, True)
    assert row.subject_keys == ["t:7", "g:1"]
    await backend.executor.commit([writes.wiped(uuid, later), writes.refused(uuid, "late")])
    row = await stored(backend, uuid)
    assert row is not None
    assert (row.status, row.wiped_at) == ("no-target", later)  # in submission order
    assert row.owner_info == "late"
    async with backend.engine.connect() as conn:
        seen = (await conn.execute(select(CallerSeen))).one()
    assert seen.seen_at == later


async def test_a_failing_batch_commits_nothing(backend: Backend) -> None:
    writes, uuid = backend.writes, "00000000-0000-4000-8000-000000000004"
    await backend.executor.commit([writes.created(reservation(uuid))])
    fresh = "00000000-0000-4000-8000-000000000005"
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await backend.executor.commit(
            [writes.created(reservation(fresh)), writes.created(reservation(uuid))]
        )
    assert await stored(backend, fresh) is None
