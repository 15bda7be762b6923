"""`create_app(settings)`: builds the whole service; nothing connects before it runs."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from random import Random

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException
from starlette.responses import Response

from callbid.adapters.buyers.breaker import BreakerPolicy, Breakers
from callbid.adapters.buyers.executor import BuyerExecutor
from callbid.adapters.buyers.guard import AddressGuard, OutboundCheck
from callbid.adapters.config_bus import RedisConfigBus
from callbid.adapters.geo import zip_index
from callbid.adapters.leases import RedisLeases
from callbid.adapters.storage.calls import CallWrites
from callbid.adapters.storage.db import create_engine, migrate, session_factory
from callbid.adapters.storage.postgres_writer import PostgresExecutor
from callbid.adapters.storage.reservations import ReservationWrites
from callbid.adapters.storage.sqlite_writer import SqliteExecutor
from callbid.adapters.storage.writer import BatchExecutor, EngineExecutor, GroupWriter
from callbid.api import calls, docs, public, telephony
from callbid.api.admin import admin_router
from callbid.api.errors import (
    failed,
    handle_callbid_error,
    handle_http_error,
    handle_invalid_field,
    handle_validation_error,
    outage_response,
)
from callbid.api.owner import owner_router
from callbid.api.publisher_openapi import install_openapi
from callbid.console import routes as console
from callbid.domain.errors import CallbidError, InvalidField
from callbid.hotstate.memory import MemoryHotState
from callbid.hotstate.protocol import HotState
from callbid.hotstate.redis import RedisHotState, connect_redis
from callbid.runtime import Runtime
from callbid.service.calls import restore_calls
from callbid.service.configs import ConfigCache
from callbid.service.demo import seed_demo_if_empty
from callbid.service.maintenance import (
    Maintenance,
    restore_memory_state,
    restore_redis_state,
)
from callbid.service.pixels import pixel_dispatcher
from callbid.service.users import console_secret
from callbid.settings import Settings

log = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD = 20_000


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    rng: Random | None = None,
    migrate_schema: bool = True,
) -> FastAPI:
    """The ASGI app: publisher API at the root, owner look-up, admin API under /api/v1.

    `clock` and `rng` default to the wall clock and a random source seeded from
    `settings.random_seed`; tests pass their own.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate_schema:
            await asyncio.to_thread(migrate, settings.database_url)
        await asyncio.to_thread(zip_index)
        runtime = await _start_runtime(
            settings, clock or _utcnow, rng or Random(settings.random_seed)
        )
        buyers = runtime.buyers = _buyer_executor(settings)
        await buyers.start()
        app.state.runtime = runtime
        maintenance = Maintenance(runtime)
        maintenance.start()
        pixels = pixel_dispatcher(settings, runtime.sessions, runtime.clock)
        await pixels.start()
        _settle_garbage_collector()
        try:
            yield
        finally:
            await maintenance.stop()
            await pixels.stop()
            await buyers.close()
            if runtime.bus is not None:
                await runtime.bus.stop()
            await runtime.writer.stop()
            await runtime.store.close()
            await runtime.engine.dispose()

    app = FastAPI(
        title="callbid",
        version="0.1.0",
        summary="Pay-per-call real-time bidding and call reservation (Retreaver RTB compatible).",
        lifespan=lifespan,
        # Served by `docs.routes()` with packaged assets instead of FastAPI's CDN ones.
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(CallbidError, handle_callbid_error)
    app.add_exception_handler(InvalidField, handle_invalid_field)
    app.add_exception_handler(HTTPException, handle_http_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(Exception, _handle_unexpected)
    # First in line: every request is matched against the routes in order.
    app.router.routes[0:0] = public.routes() + telephony.routes()
    app.include_router(owner_router())
    console.install(app)
    app.include_router(admin_router(), prefix="/api/v1")
    app.include_router(calls.router, prefix="/api/v1")
    app.router.routes.extend(docs.routes())
    install_openapi(app)
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process of `callbid serve --workers N` (settings from
    `CALLBID_*`; the parent process has migrated the schema already)."""
    return create_app(Settings(), migrate_schema=False)


async def _start_runtime(settings: Settings, clock: Callable[[], datetime], rng: Random) -> Runtime:
    engine = create_engine(settings)
    sessions = session_factory(engine)
    if settings.seed_demo:
        await seed_demo_if_empty(sessions, settings)
    configs = ConfigCache(sessions)
    store: HotState
    bus: RedisConfigBus | None = None
    leases: RedisLeases | None = None
    if settings.uses_redis:
        assert settings.redis_url is not None
        client = connect_redis(
            settings.redis_url,
            timeout=settings.redis_timeout_seconds,
            pool_size=settings.redis_pool_size,
        )
        redis_store = store = RedisHotState(
            client,
            replicas_ack=settings.redis_replicas_ack,
            wait_ms=int(settings.redis_timeout_seconds * 500),  # half the call's time limit
        )

        async def restore_if_lost() -> None:
            problem = await redis_store.version_problem()
            if problem is not None:
                log.error("%s; reserves will fail until it is upgraded", problem)
            await restore_redis_state(redis_store, sessions, clock())

        # On every (re)subscription, so also when Redis comes back empty after a restart.
        bus = RedisConfigBus(client, configs.invalidate, on_subscribed=restore_if_lost)
        bus.start()
        leases = RedisLeases(client, holder=bus.origin)
    else:
        memory = MemoryHotState()
        restored = await restore_memory_state(memory, sessions, clock())
        calls = await restore_calls(memory, sessions, clock())
        log.info("restored %d live reservations and %d live calls", restored, calls)
        store = memory
    writer = GroupWriter(_executor(settings, engine), batch_max=settings.write_batch_max)
    writer.start()
    return Runtime(
        console_secret=await console_secret(sessions, settings),
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=store,
        writer=writer,
        writes=ReservationWrites(engine.dialect.name),
        call_writes=CallWrites(engine.dialect.name),
        configs=configs,
        clock=clock,
        rng=rng,
        bus=bus,
        leases=leases,
        outbound=OutboundCheck(AddressGuard(settings.buyer_allow_networks)),
    )


def _buyer_executor(settings: Settings) -> BuyerExecutor:
    policy = BreakerPolicy(
        failures=settings.breaker_failures, cooldown_seconds=settings.breaker_cooldown_seconds
    )
    return BuyerExecutor(
        pool_size=settings.buyer_pool_size,
        max_body_bytes=settings.buyer_max_body_bytes,
        allow_networks=settings.buyer_allow_networks,
        breakers=Breakers(policy),
    )


def _settle_garbage_collector() -> None:
    """Move everything built at start (configuration, the ZIP index, library metadata) out of
    the collector's sight and collect young objects less often: with the defaults, full
    collections walking hundreds of thousands of static objects stalled pings for tens of
    milliseconds under load."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _executor(settings: Settings, engine: AsyncEngine) -> BatchExecutor:
    path = settings.sqlite_path
    if path is not None:
        return SqliteExecutor(path)
    if engine.dialect.name == "postgresql":
        return PostgresExecutor(engine)
    return EngineExecutor(engine)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    outage = outage_response(exc)
    if outage is not None:
        return outage
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return failed(500, "internal error")
