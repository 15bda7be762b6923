"""PostgreSQL batches straight through asyncpg: inserts by binary COPY, every other statement
as one prepared `executemany`, all in one transaction.

Through SQLAlchemy, a batch of reservation inserts became one multi-row INSERT whose text
changed with the batch size (PostgreSQL parsed and planned each anew) and whose parameters
went through a bind processor each in Python. COPY sends the rows as binary tuples that
PostgreSQL stores without parsing or planning a statement; the SQL of the other statements
is compiled once per statement and parameter set and prepared by asyncpg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import JSON, Executable, Insert
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from callbid.adapters.storage.writer import WriteOp, runs

_DIALECT = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one statement with one set of parameter names reaches PostgreSQL: a COPY into
    `table` (a plain insert) or `sql` run with `executemany`; `order` names the values of a
    row, `json` their positions that are JSON columns."""

    table: str | None
    sql: str
    order: tuple[str, ...]
    fixed: dict[str, Any]
    json: tuple[int, ...]

    def row(self, params: dict[str, Any]) -> tuple[Any, ...]:
        merged = {**self.fixed, **params} if self.fixed else params
        values = [merged[name] for name in self.order]
        for index in self.json:
            values[index] = _json_text(values[index])
        return tuple(values)


def _plan(statement: Executable, names: tuple[str, ...]) -> _Plan:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=_DIALECT, column_keys=list(names))
    assert isinstance(compiled, SQLCompiler)
    fixed = {k: v for k, v in compiled.params.items() if k not in names}
    copy = isinstance(statement, Insert) and not fixed and statement._post_values_clause is None
    order = names if copy else tuple(compiled.positiontup or ())
    # A bind parameter takes the type of the column it is compared with or assigned to.
    json = tuple(i for i, n in enumerate(order) if isinstance(compiled.binds[n].type, JSON))
    if copy:
        assert isinstance(statement, Insert)
        return _Plan(statement.table.name, "", order, {}, json)
    return _Plan(None, str(compiled), order, fixed, json)


class PostgresExecutor:
    """Commits batches on a pooled asyncpg connection of the engine, in one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan] = {}

    async def commit(self, ops: Sequence[WriteOp]) -> None:
        prepared = []
        for statement, params in runs(ops):
            plan = self._plan_for(statement, tuple(params[0]))
            prepared.append((plan, [plan.row(p) for p in params]))
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            async with driver.transaction():
                for plan, rows in prepared:
                    if plan.table is not None:
                        await driver.copy_records_to_table(
                            plan.table, records=rows, columns=plan.order
                        )
                    else:
                        await driver.executemany(plan.sql, rows)

    async def close(self) -> None:
        return None

    def _plan_for(self, statement: Executable, names: tuple[str, ...]) -> _Plan:
        key = (id(statement), names)
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = _plan(statement, names)
        return found
