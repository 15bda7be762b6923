"""The SQLite executor: rows read back as SQLAlchemy wrote them, and a batch that finds the
write lock taken waits for it on the writer thread instead of failing or blocking the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from callbid.adapters.storage.reservations import ReservationWrites
from callbid.adapters.storage.sqlite_writer import SqliteExecutor
from callbid.adapters.storage.tables import Base, CallerSeen

AT = datetime(2026, 11, 23, 15, 0, 15, 412000, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "writer.db"
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # as the service's engine leaves it
    return path


def seen_rows(path: Path) -> list[tuple[str, datetime, datetime]]:
    engine = create_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        rows = session.scalars(select(CallerSeen).order_by(CallerSeen.caller_number)).all()
        found = [(r.caller_number, r.seen_at, r.keep_until) for r in rows]
    engine.dispose()
    return found


async def test_rows_read_back_as_written(database: Path) -> None:
    writes = ReservationWrites("sqlite")
    executor = SqliteExecutor(database)
    until = AT + timedelta(seconds=90)
    await executor.commit([writes.seen(1, 1, "+12125550123", AT, until)])
    await executor.commit([writes.seen(1, 1, "+12125550123", AT, until + timedelta(seconds=1))])
    await executor.close()
    assert seen_rows(database) == [("+12125550123", AT, until + timedelta(seconds=1))]


async def test_waits_for_a_write_lock_held_elsewhere(database: Path) -> None:
    writes = ReservationWrites("sqlite")
    executor = SqliteExecutor(database)
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")
    await executor.commit([writes.seen(1, 1, "+12125550124", AT, AT)])
    await executor.close()
    other.close()
    assert [row[0] for row in seen_rows(database)] == ["+12125550124"]


async def test_a_failing_batch_commits_nothing(database: Path) -> None:
    writes = ReservationWrites("sqlite")
    executor = SqliteExecutor(database)
    good = writes.seen(1, 1, "+12125550125", AT, AT)
    bad = writes.seen(1, 1, None, AT, AT)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        await executor.commit([good, bad])
    await executor.close()
    assert seen_rows(database) == []
