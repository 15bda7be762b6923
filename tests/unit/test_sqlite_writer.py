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

from callbid.adapters.storage import sqlite_writer
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


async def _commit_many(executor: SqliteExecutor, start: int, count: int) -> None:
    writes = ReservationWrites("sqlite")
    for n in range(start, start + count):
        rows = [writes.seen(1, 1, f"+1212{n:03d}{k:04d}", AT, AT) for k in range(20)]
        await executor.commit(rows)
        await asyncio.sleep(0.001)  # the loop turns between commits, as between requests


async def test_the_log_is_bounded_once_a_long_reader_lets_go(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader holding an old snapshot lets the log grow past its bound (no checkpoint can
    rewind it, and RESTART gives up after CHECKPOINT_BUSY_MS instead of stalling commits);
    once it lets go, the next checkpoint (a RESTART) rewinds it and the file is cut back to
    the bound instead of keeping its high-water size for ever."""
    limit = 64 * 1024
    monkeypatch.setattr(sqlite_writer, "WAL_SOFT_LIMIT_BYTES", limit)
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_INTERVAL", 0.0)
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_BUSY_MS", 1)
    monkeypatch.setattr(
        sqlite_writer, "PRAGMAS", (*sqlite_writer.PRAGMAS[:-1], f"journal_size_limit={limit}")
    )
    executor = SqliteExecutor(database)
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM caller_seen").fetchone()
    await _commit_many(executor, 0, 200)
    grown = executor.wal_bytes()
    assert grown > 4 * limit
    reader.execute("COMMIT")
    reader.close()
    await _commit_many(executor, 200, 5)
    await asyncio.sleep(0.05)  # the checkpoint after the last commit runs on the writer thread
    await _commit_many(executor, 205, 5)
    bounded = executor.wal_bytes()  # before close: closing the last connection drops the log
    await executor.close()
    # Rewound and cut to the limit, plus the few commits since (without the bound: `grown`).
    assert bounded <= 2 * limit < grown
    assert len(seen_rows(database)) == 210 * 20


async def test_an_idle_log_is_truncated(database: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRUNCATE while commits keep coming (every 0.1 s, the idle delay 0.25 s); once they
    stop, one TRUNCATE checkpoint and the log file is empty."""
    monkeypatch.setattr(sqlite_writer, "IDLE_TRUNCATE_S", 0.25)
    modes: list[str | None] = []
    original = SqliteExecutor._checkpoint_sync

    def recording(self: SqliteExecutor, mode: str | None) -> bool:
        modes.append(mode)
        return original(self, mode)

    monkeypatch.setattr(SqliteExecutor, "_checkpoint_sync", recording)
    executor = SqliteExecutor(database)
    for n in range(8):
        await _commit_many(executor, n, 1)
        await asyncio.sleep(0.1)
    assert "TRUNCATE" not in modes
    assert executor.wal_bytes() > 0
    for _ in range(40):
        await asyncio.sleep(0.05)
        if executor.wal_bytes() == 0:
            break
    idle = executor.wal_bytes()  # before close: closing the last connection drops the log
    await executor.close()
    assert modes.count("TRUNCATE") == 1
    assert idle == 0
    assert len(seen_rows(database)) == 8 * 20


async def test_a_log_written_by_another_connection_is_truncated_when_idle(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's own writes (admin API, the maintenance purge) go through other
    connections; once they stop, their log is emptied too."""
    monkeypatch.setattr(sqlite_writer, "IDLE_TRUNCATE_S", 0.2)
    executor = SqliteExecutor(database)
    await _commit_many(executor, 0, 1)
    with closing(sqlite3.connect(database, isolation_level=None)) as other:
        other.execute("PRAGMA wal_autocheckpoint=0")
        for n in range(5):
            await asyncio.sleep(0.1)  # the idle timer fires while these writes go on
            other.execute("DELETE FROM caller_seen WHERE caller_number LIKE ?", (f"%{n}",))
            assert executor.wal_bytes() > 0
        for _ in range(40):
            await asyncio.sleep(0.05)
            if executor.wal_bytes() == 0:
                break
        idle = executor.wal_bytes()
    await executor.close()
    assert idle == 0
    assert len(seen_rows(database)) == 20 - 10
