"""Engine construction and schema migration for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from callbid.adapters.storage.sqlite_writer import WAL_SOFT_LIMIT_BYTES
from callbid.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(settings: Settings) -> AsyncEngine:
    """An async engine; SQLite runs in WAL mode so readers never wait on the group writer and
    a committed transaction survives a killed process."""
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": 30},
            pool_size=4,
            max_overflow=4,
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        # An error's message must not carry bound values (caller numbers, token hashes).
        hide_parameters=True,
        pool_timeout=settings.database_timeout_seconds,
        connect_args={"timeout": settings.database_timeout_seconds},
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )


def _json_text(value: Any) -> str:
    """JSON columns through orjson: the decision log and tags of every ping are serialised."""
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # The same bound as the group writer's connections (sqlite_writer.WAL_SOFT_LIMIT_BYTES).
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SOFT_LIMIT_BYTES}")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str) -> None:
    """Bring the schema to the newest revision (synchronous; run before serving)."""
    command.upgrade(alembic_config(database_url), "head")
