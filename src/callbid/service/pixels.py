"""Pixels (webhooks out): rendered into the outbox in the same commit as their event, then
delivered at least once by a background dispatcher that no ping or call ever waits for.

Firing an event's pixels, from any use case:

    tokens = pixel_tokens(event=PixelEvent.ANSWERED, call_uuid=..., caller_number=..., ...)
    ops = pixel_ops(campaign, PixelEvent.ANSWERED, tokens, now)
    await runtime.writer.write(event_op, *ops)  # the pixels commit iff the event does

The dispatcher (`PixelDispatcher`) leases due deliveries, sends them concurrently with a
deadline each, records every attempt and schedules the next with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from callbid.adapters.buyers.dialect import caller_tokens
from callbid.adapters.outage import OutageLog, is_outage
from callbid.adapters.pixel_http import PixelSender, SendResult
from callbid.adapters.storage import deliveries as outbox
from callbid.adapters.storage.config_repo import load_webhooks
from callbid.adapters.storage.writer import WriteOp
from callbid.domain.model import Campaign, PingRequest
from callbid.domain.pixels import (
    DEFAULT_RETRY,
    PixelEvent,
    RetryPolicy,
    Webhook,
    next_attempt,
    render,
)
from callbid.domain.reserve import LiveReservation
from callbid.ids import new_id
from callbid.settings import Settings

log = logging.getLogger(__name__)
report_outage = OutageLog(log)

#: Deliveries leased by one poll.
BATCH = 100
#: Sends in flight per dispatcher (and connections its pool may use at once): a send waits
#: for no other, or a dead receiver's deadlines would eat into a live one's.
MAX_IN_FLIGHT = 256
#: A lease outlasts the attempt's deadline by this much (time to record the outcome).
LEASE_MARGIN_SECONDS = 30.0
#: Sends still running at stop get this long before they are given back unsent.
STOP_GRACE_SECONDS = 1.0
#: Outcomes kept for the next try while the database cannot take them.
MAX_UNRECORDED = 10_000


def money_text(value: float) -> str:
    """`12.5` -> `12.50`, `3.33333` -> `3.3333`: cents always, at most four decimals."""
    text = f"{value:.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def pixel_tokens(
    *,
    event: PixelEvent,
    reservation_uuid: str | None = None,
    call_uuid: str | None = None,
    caller_number: str | None = None,
    publisher_id: str | None = None,
    payout: float | None = None,
    revenue: float | None = None,
    inbound_number: str | None = None,
    target_id: int | None = None,
    campaign_id: int | None = None,
    tags: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Every `[token]` of a pixel: the request's or call's tags (names lower-cased), then the
    standard tokens, which win over tags of the same name.

    Standard tokens: `event`, `reservation_uuid`, `call_uuid`, `uuid` (the call's uuid, else
    the reservation's), `caller_number` (E.164) with `caller_number_digits` and
    `caller_number_nanp`, `publisher_id`, `payout` and `revenue` (`12.50`), `inbound_number`,
    `target_id`, `campaign_id`. What is not known is an empty string.
    """
    tokens = {str(k).lower(): "" if v is None else str(v) for k, v in (tags or {}).items()}
    tokens.update(caller_tokens(caller_number))
    standard = {
        "event": str(event),
        "reservation_uuid": reservation_uuid,
        "call_uuid": call_uuid,
        "uuid": call_uuid or reservation_uuid,
        "publisher_id": publisher_id,
        "payout": None if payout is None else money_text(payout),
        "revenue": None if revenue is None else money_text(revenue),
        "inbound_number": inbound_number,
        "target_id": None if target_id is None else str(target_id),
        "campaign_id": None if campaign_id is None else str(campaign_id),
    }
    tokens.update({name: value or "" for name, value in standard.items()})
    return tokens


def pixel_ops(
    campaign: Campaign, event: PixelEvent, tokens: Mapping[str, str], now: datetime
) -> list[WriteOp]:
    """The outbox inserts (rank 1) of every pixel of `campaign` on `event` whose conditions pass
    on `tokens` (build them with `pixel_tokens`), due at `now`. Add them to the group writer's
    batch of the event's own row, so a pixel is committed exactly when its event is. Empty, and
    nearly free, for a campaign without pixels."""
    if not campaign.webhooks:
        return []
    return delivery_ops(campaign.company_id, campaign.webhooks, event, tokens, now)


def delivery_ops(
    company_id: int,
    webhooks: Sequence[Webhook],
    event: PixelEvent,
    tokens: Mapping[str, str],
    now: datetime,
) -> list[WriteOp]:
    """`pixel_ops` for pixels loaded without their campaign."""
    subject = (tokens.get("call_uuid") or tokens.get("reservation_uuid") or "")[:36] or None
    ops = []
    for webhook in webhooks:
        if webhook.event != event:
            continue
        pixel = render(webhook, tokens)
        if pixel is None:
            continue
        row = {
            "id": new_id(),
            "company_id": company_id,
            "webhook_id": webhook.id,
            "event": str(event),
            "subject": subject,
            "method": pixel.method,
            "url": pixel.url,
            "headers": dict(pixel.headers),
            "body": pixel.body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
            "last_status": None,
            "last_error": None,
            "created_at": now,
            "delivered_at": None,
        }
        ops.append(outbox.delivery_op(row))
    return ops


def reserved_pixel_ops(
    campaign: Campaign, request: PingRequest, record: LiveReservation, *, now: datetime
) -> list[WriteOp]:
    """The `reserved` pixels of a reservation just made on `request`."""
    if not campaign.webhooks:
        return []
    tokens = pixel_tokens(
        event=PixelEvent.RESERVED,
        reservation_uuid=record.uuid,
        caller_number=record.caller_number,
        publisher_id=request.publisher_id,
        payout=record.payout,
        revenue=record.revenue,
        inbound_number=record.inbound_number,
        target_id=record.target_id,
        campaign_id=campaign.id,
        tags=request.tags,
    )
    return pixel_ops(campaign, PixelEvent.RESERVED, tokens, now)


async def expire_with_pixels(session: AsyncSession, now: datetime) -> int:
    """Mark reservations past their TTL expired and, in the same transaction, queue the
    `expired` pixels of their campaigns; returns how many expired. Costs the expiry alone
    when nothing expired, one small query more when no campaign of theirs has such pixels."""
    conn = await session.connection()
    expired = await outbox.expire_reservations(conn, now)
    if not expired:
        return 0
    hooks = await load_webhooks(session, {c for _, c in expired}, PixelEvent.EXPIRED)
    if hooks:
        await _queue_expired(conn, [u for u, c in expired if c in hooks], hooks, now)
    return len(expired)


async def _queue_expired(
    conn: AsyncConnection,
    uuids: Sequence[str],
    hooks: Mapping[int, Sequence[Webhook]],
    now: datetime,
) -> None:
    ops: list[WriteOp] = []
    for row in await outbox.reservations_by_uuid(conn, uuids):
        tokens = pixel_tokens(
            event=PixelEvent.EXPIRED,
            reservation_uuid=row.uuid,
            caller_number=row.caller_number,
            publisher_id=row.publisher_id,
            payout=row.payout,
            revenue=row.revenue,
            inbound_number=row.inbound_number,
            target_id=row.target_id,
            campaign_id=row.campaign_id,
            tags=row.tags if isinstance(row.tags, dict) else None,
        )
        webhooks = hooks[row.campaign_id]
        ops += delivery_ops(row.company_id, webhooks, PixelEvent.EXPIRED, tokens, now)
    await outbox.insert_deliveries(conn, ops)


def pixel_dispatcher(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
) -> PixelDispatcher:
    """The dispatcher `settings` describe (its receivers screened like buyers)."""
    sender = PixelSender(
        timeout=settings.pixel_timeout_seconds,
        allow_networks=settings.buyer_allow_networks,
        pool_size=MAX_IN_FLIGHT,
    )
    return PixelDispatcher(
        sessions,
        sender,
        clock=clock,
        policy=retry_policy(settings),
        poll_seconds=settings.pixel_poll_seconds,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base_seconds=settings.pixel_backoff_base_seconds,
        max_seconds=settings.pixel_backoff_max_seconds,
        max_attempts=settings.pixel_max_attempts,
    )


def settled(
    leased: outbox.Leased, result: SendResult, at: datetime, policy: RetryPolicy
) -> outbox.Settled:
    """What one attempt makes of its delivery: delivered, due again later, or failed."""
    attempts = leased.attempts + 1
    status, due = "delivered", at
    if not result.delivered:
        retry = None if result.permanent else next_attempt(attempts, at, policy)
        status, due = ("failed", at) if retry is None else ("pending", retry)
    return outbox.Settled(
        delivery_id=leased.id,
        at=at,
        attempts=attempts,
        status=status,
        next_attempt_at=due,
        http_status=result.http_status,
        error=result.error,
        latency_ms=result.latency_ms,
    )


class PixelDispatcher:
    """Delivers due pixels in the background until stopped; see the module.

    Each poll records the attempts finished since the last one, then leases as many due
    deliveries as it has room for and sends each in a task of its own, so a slow receiver
    holds one slot for at most its deadline and never the loop. Several dispatchers (workers,
    machines) share the outbox through leases.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: PixelSender,
        *,
        clock: Callable[[], datetime],
        policy: RetryPolicy = DEFAULT_RETRY,
        poll_seconds: float = 0.5,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._sessions = sessions
        self._sender = sender
        self._clock = clock
        self._policy = policy
        self._poll = poll_seconds
        self._max_in_flight = max_in_flight
        self._sending: dict[asyncio.Task[None], str] = {}
        self._finished: list[outbox.Settled] = []
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        #: The last poll leased all it asked for: more may be due at once.
        self._backlog = False

    async def start(self) -> None:
        await self._sender.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pixel-dispatcher")

    async def stop(self) -> None:
        """Stop polling; give running sends a moment, record what finished and give back the
        leases of the rest, so any dispatcher can send them at once; close the connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=STOP_GRACE_SECONDS)
        unsent = [delivery_id for task, delivery_id in self._sending.items() if not task.done()]
        for task in self._sending:
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        self._sending.clear()
        try:
            await self._record(unsent)
        except Exception as exc:
            log.warning("pixel outcomes not recorded at stop: %r", exc)
        await self._sender.close()

    async def run_once(self) -> int:
        """One poll: record finished attempts, lease and start due sends; how many started."""
        await self._record()
        room = min(BATCH, self._max_in_flight - len(self._sending))
        if room <= 0:
            self._backlog = True
            return 0
        now = self._clock()
        until = now + timedelta(seconds=self._sender.timeout + LEASE_MARGIN_SECONDS)
        async with self._sessions.begin() as session:
            conn = await session.connection()
            leased = await outbox.lease_due(conn, now=now, until=until, limit=room)
        self._backlog = len(leased) == room
        for delivery in leased:
            task = asyncio.create_task(self._send(delivery))
            self._sending[task] = delivery.id
            task.add_done_callback(self._forget)
        return len(leased)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                self._report(exc)
                self._backlog = False
            if self._backlog and len(self._sending) < self._max_in_flight:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll)
            self._wakeup.clear()

    async def _send(self, delivery: outbox.Leased) -> None:
        result = await self._sender.send(
            delivery.method, delivery.url, delivery.headers, delivery.body
        )
        self._finished.append(settled(delivery, result, self._clock(), self._policy))

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._sending.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("pixel send failed", exc_info=task.exception())
        if self._backlog:
            self._wakeup.set()  # a slot is free and deliveries are waiting for one

    async def _record(self, unsent: Sequence[str] = ()) -> None:
        """Write the finished attempts in one transaction; kept for the next poll if the
        database refuses (their leases run out meanwhile: at least once, maybe twice)."""
        finished, self._finished = self._finished, []
        if not finished and not unsent:
            return
        try:
            async with self._sessions.begin() as session:
                conn = await session.connection()
                await outbox.settle(conn, finished)
                await outbox.unlease(conn, unsent)
        except BaseException:
            self._finished = (finished + self._finished)[-MAX_UNRECORDED:]
            raise

    @staticmethod
    def _report(exc: Exception) -> None:
        if is_outage(exc):
            report_outage("storage (pixels)", exc)
        else:
            log.exception("pixel dispatch failed")
