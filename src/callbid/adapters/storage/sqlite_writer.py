"""SQLite batches committed on the event loop's thread, with the writer thread as a fallback.

SQLAlchemy's per-row parameter processing and aiosqlite's thread hop per statement cost more
than the insert itself on the ping path. Handing each batch to a thread cost nearly as much
again on a busy server: `sqlite3` releases the GIL around every row, and each time the writer
thread wants it back it waits for the event loop to yield it (measured: 1.4k pings/s from one
core with the thread, 2.7k committing in place). So a batch runs where it was formed: one
`executemany` per statement over positional parameters adapted to what SQLAlchemy reads back.
In WAL mode with `synchronous=NORMAL` a commit appends to the log and does not sync; what
could block the event loop is moved off it: the WAL checkpoints (which sync) run on the writer
thread, and a batch that finds the write lock taken by another connection (admin writes, the
maintenance purge) is committed there, waiting as long as it must.

The WAL is bounded. A PASSIVE checkpoint each second copies what it can without waiting, but
it never rewinds the log while some reader still uses its older frames, and SQLite never
shrinks the file by itself: under steady load the log once grew to 602 MB beside an 80 MB
database and stayed that size while idle. So when the log passes WAL_SOFT_LIMIT_BYTES the next
checkpoint is a RESTART (it waits, on the writer thread, for the readers to move on, so the
next commit writes from the log's start), `journal_size_limit` truncates the file back to that
size whenever the log is rewound, and once nothing has written to the log for IDLE_TRUNCATE_S
(whoever wrote it) a TRUNCATE checkpoint empties it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, Executable, Insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from callbid.adapters.storage.tables import UtcDateTime
from callbid.adapters.storage.writer import WriteOp, runs

log = logging.getLogger(__name__)

_DIALECT = sqlite.dialect(paramstyle="qmark")
#: Seconds between WAL checkpoints; SQLite's own (every 1000 pages) is off on our connections.
CHECKPOINT_INTERVAL = 1.0
#: A log past this size gets a RESTART checkpoint, and is truncated back to it when rewound.
WAL_SOFT_LIMIT_BYTES = 64 * 1024 * 1024
#: Seconds without a commit after which the log is checkpointed and truncated to zero bytes.
IDLE_TRUNCATE_S = 5.0
IDLE_RECHECK_S = 0.05
BUSY_WAIT_S = 30.0
#: How long a RESTART or TRUNCATE checkpoint waits for readers (writers wait meanwhile).
CHECKPOINT_BUSY_MS = 20
PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    "wal_autocheckpoint=0",
    f"journal_size_limit={WAL_SOFT_LIMIT_BYTES}",
)

Converter = Callable[[Any], Any]
Prepared = list[tuple[str, list[tuple[Any, ...]]]]


def _utc_text(value: datetime) -> str:
    # `%Y-%m-%d %H:%M:%S.%f` in UTC; isoformat writes it faster than strftime.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def adapt(value: Any) -> Any:
    """A parameter as SQLAlchemy's SQLite types store it (UTC datetimes, JSON text)."""
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, dict | list):
        return _json_text(value)
    return value


def converters(statement: Executable, keys: Sequence[str]) -> list[tuple[int, Converter]] | None:
    """Converters by parameter position for an insert's columns, from their types; None when
    the statement's parameters are not plain columns (then every value goes through `adapt`)."""
    if not isinstance(statement, Insert):
        return None
    found: list[tuple[int, Converter]] = []
    for index, key in enumerate(keys):
        column_type = statement.table.c[key].type
        if isinstance(column_type, UtcDateTime):
            found.append((index, _utc_text))
        elif isinstance(column_type, JSON):
            found.append((index, _json_text))
    return found


class _Compiled:
    """A statement compiled for one set of parameter names: the SQL text, and how to turn a
    parameter dict into the positional tuple it takes."""

    def __init__(self, statement: Executable, names: tuple[str, ...]) -> None:
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=_DIALECT, column_keys=list(names))
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self.order = tuple(compiled.positiontup or ())
        # Values the statement fixes itself (e.g. `status='confirmed'`).
        self.fixed = {k: adapt(v) for k, v in compiled.params.items() if k not in names}
        self.convert = converters(statement, self.order) if not self.fixed else None

    def row(self, params: dict[str, Any]) -> tuple[Any, ...]:
        if self.convert is None:
            merged = {**self.fixed, **params}
            return tuple(adapt(merged[name]) for name in self.order)
        values = list(map(params.__getitem__, self.order))
        for index, converter in self.convert:
            value = values[index]
            if value is not None:
                values[index] = converter(value)
        return tuple(values)


class SqliteExecutor:
    """Commits batches on the calling thread's sqlite3 connection (WAL mode); see the module."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._local = threading.local()
        self._sql: dict[tuple[int, tuple[str, ...]], _Compiled] = {}
        self._wal = Path(f"{self._path}-wal")
        self._checkpoint: asyncio.Future[bool] | None = None
        self._next_checkpoint = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing = False

    async def commit(self, ops: Sequence[WriteOp]) -> None:
        prepared = self._prepare(ops)
        try:
            self._commit_sync(prepared, wait=False)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            await self._in_thread(self._commit_sync, prepared)
        self._maybe_checkpoint()

    async def close(self) -> None:
        self._closing = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._checkpoint is not None:
            await self._checkpoint
        await self._in_thread(self._close_sync)
        self._close_sync()
        self._pool.shutdown(wait=True)

    def _prepare(self, ops: Sequence[WriteOp]) -> Prepared:
        prepared = []
        for statement, params in runs(ops):
            compiled = self._compiled(statement, params[0])
            prepared.append((compiled.sql, [compiled.row(p) for p in params]))
        return prepared

    def _compiled(self, statement: Executable, sample: dict[str, Any]) -> _Compiled:
        names = tuple(sample)
        cache_key = (id(statement), names)
        found = self._sql.get(cache_key)
        if found is None:
            found = self._sql[cache_key] = _Compiled(statement, names)
        return found

    async def _in_thread(self, work: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    def _maybe_checkpoint(self) -> None:
        """Start a WAL checkpoint on the writer thread at most every CHECKPOINT_INTERVAL, and
        arm the idle truncation (it re-arms itself from then on)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._idle_timer is None and not self._closing:
            self._idle_timer = loop.call_at(now + IDLE_TRUNCATE_S, self._on_idle_timer)
        if now < self._next_checkpoint:
            return
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        self._next_checkpoint = now + CHECKPOINT_INTERVAL
        self._checkpoint = loop.run_in_executor(self._pool, self._checkpoint_sync, None)

    def _on_idle_timer(self) -> None:
        """Truncate the log once nothing has written to it for IDLE_TRUNCATE_S. The file's
        modification time says when it was last written by anyone (this executor, the engine's
        admin writes, the maintenance purge), so their logs are emptied too."""
        loop = asyncio.get_running_loop()
        self._idle_timer = None
        if self._closing:
            return
        try:
            wal = self._wal.stat()
        except FileNotFoundError:
            wal = None
        if self._checkpoint is not None and not self._checkpoint.done():
            delay = IDLE_RECHECK_S  # a checkpoint is running: look again shortly
        elif wal is None or wal.st_size == 0:
            delay = IDLE_TRUNCATE_S
        else:
            delay = wal.st_mtime + IDLE_TRUNCATE_S - time.time()
            if delay <= 0:
                truncate = loop.run_in_executor(self._pool, self._checkpoint_sync, "TRUNCATE")
                self._checkpoint = truncate
                delay = IDLE_TRUNCATE_S  # and again if readers kept it from finishing
        self._idle_timer = loop.call_at(
            loop.time() + max(delay, IDLE_RECHECK_S), self._on_idle_timer
        )

    def _connection(self, *, wait: bool = True) -> sqlite3.Connection:
        """This thread's connection; the event loop's (`wait=False`) never waits for a lock."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            timeout = BUSY_WAIT_S if wait else 0.0
            conn = sqlite3.connect(self._path, timeout=timeout, isolation_level=None)
            try:
                for pragma in PRAGMAS:
                    conn.execute(f"PRAGMA {pragma}")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def _commit_sync(self, prepared: Prepared, *, wait: bool = True) -> None:
        conn = self._connection(wait=wait)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in prepared:
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def wal_bytes(self) -> int:
        """The log file's size now (0 when there is none)."""
        try:
            return self._wal.stat().st_size
        except FileNotFoundError:
            return 0

    def _checkpoint_sync(self, mode: str | None) -> bool:
        """A checkpoint in `mode`, by default PASSIVE, or RESTART once the log is over its
        soft limit (see the module); True when it finished. RESTART and TRUNCATE hold off
        writers while they wait for readers, so they wait CHECKPOINT_BUSY_MS at most and are
        tried again later rather than stall the commits queued behind them."""
        if mode is None:
            mode = "RESTART" if self.wal_bytes() > WAL_SOFT_LIMIT_BYTES else "PASSIVE"
        conn = self._connection()
        try:
            if mode != "PASSIVE":
                conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
            try:
                busy, _frames, _copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            finally:
                if mode != "PASSIVE":
                    conn.execute(f"PRAGMA busy_timeout={int(BUSY_WAIT_S * 1000)}")
        except sqlite3.Error:
            # Harmless: the log keeps growing until the next checkpoint succeeds.
            log.warning("WAL checkpoint (%s) failed", mode, exc_info=True)
            return False
        return not busy

    def _close_sync(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
