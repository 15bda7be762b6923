"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from callbid.adapters.storage.db import migrate
from callbid.adapters.storage.tables import Base
from tests.conftest import POSTGRES_URL, reset_postgres


def differences(sync_url: str) -> list[Any]:
    engine = create_engine(sync_url)
    try:
        with engine.connect() as connection:
            return schema_diff(connection)
    finally:
        engine.dispose()


def schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diff: list[Any] = compare_metadata(context, Base.metadata)
    return diff


def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    migrate(f"sqlite+aiosqlite:///{path}")

    assert differences(f"sqlite:///{path}") == []


async def async_differences(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(schema_diff)
    finally:
        await engine.dispose()


@pytest.mark.postgres
def test_postgres_migrations_match_the_models() -> None:
    asyncio.run(reset_postgres(POSTGRES_URL))
    migrate(POSTGRES_URL)

    assert asyncio.run(async_differences(POSTGRES_URL)) == []
