"""The pixel dispatcher against real local HTTP receivers: a receiver that is down, one that
answers 500, one slower than the deadline are each tried again until delivered, and every
attempt is recorded; several dispatchers share the outbox without sending anything twice."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.pixel_http import PixelSender
from callbid.adapters.storage.db import create_engine, migrate, session_factory
from callbid.adapters.storage.deliveries import insert_deliveries, purge_deliveries
from callbid.adapters.storage.tables import WebhookAttempt, WebhookDelivery
from callbid.domain.model import Campaign
from callbid.domain.pixels import PixelEvent, RetryPolicy, Webhook
from callbid.service.pixels import PixelDispatcher, pixel_ops, pixel_tokens
from tests.conftest import BACKENDS, backend_settings, reset_postgres, sqlite_settings

LOOPBACK = ["127.0.0.0/8"]
TIMEOUT = 0.3
FAST_RETRIES = RetryPolicy(base_seconds=0.05, max_seconds=0.2, max_attempts=50)

Sessions = async_sessionmaker[AsyncSession]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(params=BACKENDS)
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sessions]:
    """A migrated, empty database of each kind, and nothing else running on it."""
    settings = sqlite_settings(tmp_path, **backend_settings(request.param))
    if request.param == "postgres":
        await reset_postgres(settings.database_url)
    await asyncio.to_thread(migrate, settings.database_url)
    engine = create_engine(settings)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


class Receiver:
    """A local HTTP server whose answer to the n-th request on a path is scripted."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.scripts: dict[str, Callable[[int], Awaitable[web.Response]]] = {}
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append((request.path, request.query_string, body))
        count = sum(1 for path, _, _ in self.seen if path == request.path)
        return await self.scripts[request.path](count)

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/{name}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def bodies(self, path: str) -> list[bytes]:
        return [body for seen_path, _, body in self.seen if seen_path == path]


def failing(times: int, status: int = 500) -> Callable[[int], Awaitable[web.Response]]:
    async def answer(count: int) -> web.Response:
        return web.Response(status=status if count <= times else 200)

    return answer


def delayed(seconds: float) -> Callable[[int], Awaitable[web.Response]]:
    async def answer(_count: int) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(text="ok")

    return answer


def slow(times: int) -> Callable[[int], Awaitable[web.Response]]:
    async def answer(count: int) -> web.Response:
        if count <= times:
            await asyncio.sleep(TIMEOUT * 4)
        return web.Response(text="ok")

    return answer


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        await server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def enqueue(sessions: Sessions, *webhooks: Webhook, subject: str = "r-1") -> None:
    campaign = Campaign(1, 1, "c", webhooks=webhooks)
    tokens = pixel_tokens(
        event=PixelEvent.RESERVED, reservation_uuid=subject, caller_number="+13035551234"
    )
    async with sessions.begin() as session:
        conn = await session.connection()
        await insert_deliveries(
            conn, pixel_ops(campaign, PixelEvent.RESERVED, tokens, wall_clock())
        )


def pixel(webhook_id: int, url: str) -> Webhook:
    return Webhook(webhook_id, PixelEvent.RESERVED, url, body='{"caller": "[caller_number]"}')


def dispatcher(sessions: Any, policy: RetryPolicy = FAST_RETRIES) -> PixelDispatcher:
    sender = PixelSender(timeout=TIMEOUT, allow_networks=LOOPBACK)
    return PixelDispatcher(sessions, sender, clock=wall_clock, policy=policy, poll_seconds=0.02)


async def deliveries(sessions: Sessions) -> dict[int | None, WebhookDelivery]:
    async with sessions() as session:
        rows = await session.scalars(select(WebhookDelivery))
        return {row.webhook_id: row for row in rows}


async def attempts(sessions: Sessions, delivery_id: str) -> list[WebhookAttempt]:
    async with sessions() as session:
        rows = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return list(rows)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


async def settled_all(sessions: Sessions) -> bool:
    return all(d.status != "pending" for d in (await deliveries(sessions)).values())


async def test_down_failing_and_slow_receivers_are_retried_until_delivered(
    sessions: Sessions, receiver: Receiver
) -> None:
    late = Receiver()
    late_port = free_port()
    base = await receiver.start()
    receiver.scripts = {"/flaky": failing(3), "/slow": slow(2)}
    late.scripts = {"/late": failing(0)}
    await enqueue(
        sessions,
        pixel(1, f"http://127.0.0.1:{late_port}/late"),
        pixel(2, f"{base}/flaky"),
        pixel(3, f"{base}/slow"),
    )
    pixels = dispatcher(sessions)
    await pixels.start()
    try:

        async def refused_twice() -> bool:
            return (await deliveries(sessions))[1].attempts >= 2

        await eventually(refused_twice)
        await late.start(late_port)
        await eventually(lambda: settled_all(sessions))
    finally:
        await pixels.stop()
        await late.stop()

    found = await deliveries(sessions)
    assert {d.status for d in found.values()} == {"delivered"}
    down = await attempts(sessions, found[1].id)
    assert [a.error for a in down[:-1]] == ["connect failed"] * (len(down) - 1)
    assert (down[-1].http_status, down[-1].error) == (200, None)
    flaky = await attempts(sessions, found[2].id)
    assert [a.http_status for a in flaky] == [500, 500, 500, 200]
    assert [a.error for a in flaky] == ["http 500"] * 3 + [None]
    slow_ones = await attempts(sessions, found[3].id)
    assert [a.error for a in slow_ones] == ["timeout", "timeout", None]
    assert all((a.latency_ms or 0) >= TIMEOUT * 1000 * 0.9 for a in slow_ones[:2])
    for webhook_id, tried in ((1, down), (2, flaky), (3, slow_ones)):
        delivery = found[webhook_id]
        assert delivery.attempts == len(tried)
        assert delivery.last_status == 200
        assert delivery.delivered_at is not None
        assert delivery.lease_until is None
    assert late.bodies("/late") == [b'{"caller": "+13035551234"}']
    assert receiver.bodies("/flaky") == [b'{"caller": "+13035551234"}'] * 4


async def test_a_receiver_that_never_succeeds_is_given_up_after_the_last_attempt(
    sessions: Sessions, receiver: Receiver
) -> None:
    base = await receiver.start()
    receiver.scripts = {"/dead": failing(1000, status=503)}
    await enqueue(sessions, pixel(1, f"{base}/dead"), pixel(2, "http://10.1.2.3/private"))
    pixels = dispatcher(sessions, RetryPolicy(base_seconds=0.02, max_seconds=0.05, max_attempts=3))
    await pixels.start()
    try:
        await eventually(lambda: settled_all(sessions))
        await asyncio.sleep(0.2)  # nothing more is sent once given up
    finally:
        await pixels.stop()

    found = await deliveries(sessions)
    assert (found[1].status, found[1].attempts, found[1].last_error) == ("failed", 3, "http 503")
    assert len(receiver.bodies("/dead")) == 3
    refused = await attempts(sessions, found[2].id)
    assert found[2].status == "failed"
    assert [a.error for a in refused] == ["address not allowed"]


async def test_several_dispatchers_send_each_delivery_once(
    sessions: Sessions, receiver: Receiver
) -> None:
    base = await receiver.start()
    receiver.scripts = {"/hook": delayed(0.05)}  # in flight across several polls
    hook = Webhook(1, PixelEvent.RESERVED, f"{base}/hook?r=[reservation_uuid]", method="GET")
    for n in range(60):
        await enqueue(sessions, hook, subject=f"r-{n}")
    workers = [dispatcher(sessions) for _ in range(3)]
    for worker in workers:
        await worker.start()
    try:
        await eventually(lambda: settled_all(sessions))
    finally:
        for worker in workers:
            await worker.stop()

    sent = Counter(query for _, query, _ in receiver.seen)
    assert len(sent) == 60
    assert set(sent.values()) == {1}


async def test_stopping_gives_back_what_it_was_still_sending(
    sessions: Sessions, receiver: Receiver
) -> None:
    base = await receiver.start()
    receiver.scripts = {"/hang": slow(1)}
    await enqueue(sessions, pixel(1, f"{base}/hang"))
    pixels = PixelDispatcher(
        sessions,
        PixelSender(timeout=10, allow_networks=LOOPBACK),
        clock=wall_clock,
        poll_seconds=0.02,
    )
    await pixels.start()
    await eventually(lambda: asyncio.sleep(0, result=bool(receiver.seen)))
    await pixels.stop()

    delivery = (await deliveries(sessions))[1]
    assert (delivery.status, delivery.attempts, delivery.lease_until) == ("pending", 0, None)


class FlakyDatabase:
    """Sessions whose first transactions fail as if the database were down."""

    def __init__(self, sessions: Sessions, failures: int) -> None:
        self._sessions = sessions
        self.failures = failures

    def __call__(self) -> AsyncSession:
        return self._sessions()

    def begin(self) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise OperationalError("BEGIN", {}, ConnectionRefusedError("database down"))
        return self._sessions.begin()


async def test_a_database_outage_does_not_stop_the_dispatcher(
    sessions: Sessions, receiver: Receiver
) -> None:
    base = await receiver.start()
    receiver.scripts = {"/hook": failing(0)}
    await enqueue(sessions, pixel(1, f"{base}/hook"))
    flaky = FlakyDatabase(sessions, failures=5)
    pixels = dispatcher(flaky)
    await pixels.start()
    try:
        await eventually(lambda: settled_all(sessions))
    finally:
        await pixels.stop()

    assert flaky.failures == 0
    assert (await deliveries(sessions))[1].status == "delivered"


async def test_purge_drops_settled_deliveries_past_retention_with_their_attempts(
    sessions: Sessions,
) -> None:
    now = wall_clock()
    old, recent = now - timedelta(days=2), now - timedelta(hours=1)
    rows = [("old-done", "delivered", old), ("old-pending", "pending", old)]
    rows += [("new-done", "failed", recent)]
    async with sessions.begin() as session:
        for delivery_id, status, created in rows:
            session.add(
                WebhookDelivery(
                    id=delivery_id,
                    company_id=1,
                    event="reserved",
                    method="GET",
                    url="https://x.test/",
                    status=status,
                    next_attempt_at=created,
                    created_at=created,
                )
            )
        await session.flush()
        session.add_all(WebhookAttempt(delivery_id=d, at=c, http_status=500) for d, _, c in rows)

    async with sessions.begin() as session:
        deleted = await purge_deliveries(await session.connection(), older_than=now - timedelta(1))

    assert deleted == 1
    async with sessions() as session:
        kept = set(await session.scalars(select(WebhookDelivery.id)))
        tried = set(await session.scalars(select(WebhookAttempt.delivery_id)))
    assert kept == tried == {"old-pending", "new-done"}
