"""Shared fixtures: an app on a fresh SQLite file, driven through its lifespan, and a client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio.cluster import RedisCluster
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from callbid.api.app import create_app
from callbid.hotstate.cluster import connect_cluster, is_cluster_url
from callbid.hotstate.redis import connect_redis
from callbid.runtime import Runtime
from callbid.service.demo import demo_credentials
from callbid.settings import Settings
from tests.builders import Built
from tests.support.redis_cluster import LocalCluster, redis_server, running_cluster
from tests.support.redis_sentinel import RedisSentinel, running_sentinel


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


async def owner_view(svc: Service, built: Built, uuid: str) -> dict[str, Any]:
    """The owner look-up of a reservation (`GET /call_reservations/{uuid}`), insisting on 200."""
    response = await svc.client.get(
        f"/call_reservations/{uuid}", headers={"Authorization": f"Bearer {built.token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


POSTGRES_URL = os.environ.get(
    "CALLBID_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
#: Database 14: the contract suite empties 15.
E2E_REDIS_URL = os.environ.get("CALLBID_TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/14")
#: The deployments the end-to-end suites run against: embedded default and scaled-out stores.
BACKENDS = [
    pytest.param("sqlite", id="sqlite-memory"),
    pytest.param("postgres", id="postgres-redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
]


async def reset_postgres(url: str) -> None:
    """Empty the test database's public schema so that the app's migrations start from
    nothing (the database is the tests' own: `CALLBID_TEST_POSTGRES_URL`)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def reset_redis(url: str) -> None:
    """Empty the tests' Redis database, or every master of a local test cluster."""
    if is_cluster_url(url):
        cluster = connect_cluster(url, timeout=5.0, pool_size=4)
        try:
            await cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)
        finally:
            await cluster.aclose()
        return
    client = connect_redis(url, timeout=2.0, pool_size=2)  # also redis+sentinel:// URLs
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def backend_settings(backend: str) -> dict[str, Any]:
    if backend == "sqlite":
        return {}
    return {"database_url": POSTGRES_URL, "redis_url": E2E_REDIS_URL, "store": "redis"}


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


def skip_without_redis_server() -> None:
    """Skip a test that starts its own Redis Cluster or Sentinel deployment on a machine
    without `redis-server`,
    unless CALLBID_TEST_REQUIRE_CLUSTER=1 (as in CI): then starting it fails the test."""
    if redis_server() is None and os.environ.get("CALLBID_TEST_REQUIRE_CLUSTER") != "1":
        pytest.skip("redis-server and redis-cli are needed for a local Redis Cluster")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One local 3-master Redis Cluster for the whole session (no replicas), on free ports.
    Skipped without `redis-server`, unless CALLBID_TEST_REQUIRE_CLUSTER=1 (then it fails)."""
    skip_without_redis_server()
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    """One Sentinel-managed primary (two replicas, three sentinels) for the whole session,
    started on first use; tests that kill a node start a deployment of their own. Skipped
    without `redis-server`, unless CALLBID_TEST_REQUIRE_CLUSTER=1 (then it fails)."""
    skip_without_redis_server()
    with running_sentinel(tmp_path_factory.mktemp("sentinel")) as deployment:
        yield deployment


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_service(tmp_path: Path, clock: FakeClock) -> Callable[..., Any]:
    """Factory: `async with make_service(**settings) as svc:` runs an app through its lifespan."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def factory(backend: str = "sqlite", **overrides: Any) -> AsyncIterator[Service]:
        settings = sqlite_settings(tmp_path, **(backend_settings(backend) | overrides))
        if backend == "postgres":
            await reset_postgres(settings.database_url)
            assert settings.redis_url is not None
            await reset_redis(settings.redis_url)
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


@pytest.fixture(params=BACKENDS)
async def any_service(
    request: pytest.FixtureRequest, make_service: Callable[..., Any]
) -> AsyncIterator[Service]:
    """The service on each deployment: SQLite with the in-process store, and PostgreSQL
    with Redis."""
    async with make_service(request.param) as svc:
        yield svc
