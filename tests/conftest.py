"""Shared fixtures: an app on a fresh SQLite file, driven through its lifespan, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callbid.api.app import create_app
from callbid.runtime import Runtime
from callbid.service.demo import demo_credentials
from callbid.settings import Settings


@dataclass
class FakeClock:
    """A settable clock for tests: `now` moves only when told."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 15, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    settings: Settings

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def demo(self) -> dict[str, Any]:
        creds = await demo_credentials(self.runtime.sessions)
        assert creds is not None
        return creds


def sqlite_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/callbid.db",
        "sweep_interval_seconds": 3600,
        "purge_interval_seconds": 3600,
        "random_seed": 7,
        "seed_demo": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_service(tmp_path: Path, clock: FakeClock) -> Callable[..., Any]:
    """Factory: `async with make_service(**settings) as svc:` runs an app through its lifespan."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[Service]:
        settings = sqlite_settings(tmp_path, **overrides)
        app = create_app(settings, clock=clock, rng=Random(settings.random_seed))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://callbid.test"
            ) as client:
                yield Service(app, client, clock, settings)

    return factory


@pytest.fixture
async def service(make_service: Callable[..., Any]) -> AsyncIterator[Service]:
    async with make_service() as svc:
        yield svc
