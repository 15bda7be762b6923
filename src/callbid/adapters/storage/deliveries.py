"""The pixel outbox: deliveries written beside their event's rows, leased by a dispatcher,
settled attempt by attempt; and the sweep's expiry that names what it expired.

A lease (`lease_until`) keeps a delivery to one dispatcher while it is being sent; a
dispatcher that dies leaves it to be leased again once the lease runs out (at least once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from callbid.adapters.storage.reservations import EXPIRE
from callbid.adapters.storage.tables import Reservation, WebhookAttempt, WebhookDelivery
from callbid.adapters.storage.writer import WriteOp

INSERT_DELIVERY = insert(WebhookDelivery)
INSERT_ATTEMPT = insert(WebhookAttempt)
#: Inserts before the updates of a batch (rank 0 is the event's own row, when it is an insert).
DELIVERY_RANK = 1
#: Ids per `IN (...)`: well below SQLite's and asyncpg's limits on bound parameters.
CHUNK = 1000

SETTLE = (
    update(WebhookDelivery)
    .where(WebhookDelivery.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next"),
        lease_until=None,
        last_status=bindparam("b_http_status"),
        last_error=bindparam("b_error"),
        delivered_at=bindparam("b_delivered_at"),
    )
)
UNLEASE = (
    update(WebhookDelivery).where(WebhookDelivery.id == bindparam("b_id")).values(lease_until=None)
)
EXPIRED_RETURNING = EXPIRE.returning(Reservation.uuid, Reservation.campaign_id)


@dataclass(frozen=True, slots=True)
class Leased:
    """A delivery this dispatcher holds until `lease_until`: what to send, attempts so far."""

    id: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Settled:
    """How one attempt went, and what becomes of its delivery.

    `status`: delivered, pending (tried again at `next_attempt_at`) or failed (given up).
    """

    delivery_id: str
    at: datetime
    attempts: int
    status: str
    next_attempt_at: datetime
    http_status: int | None
    error: str | None
    latency_ms: float | None


def delivery_op(row: dict[str, Any]) -> WriteOp:
    """The outbox insert of a rendered pixel, for the group writer's batch of its event."""
    return WriteOp(DELIVERY_RANK, INSERT_DELIVERY, row)


async def lease_due(
    conn: AsyncConnection, *, now: datetime, until: datetime, limit: int
) -> list[Leased]:
    """Lease up to `limit` pending deliveries due at `now` (oldest due first) until `until`.

    On PostgreSQL the candidates are locked `SKIP LOCKED`, and the lease conditions are
    checked again on the locked rows: two dispatchers racing never lease one delivery twice.
    A read comes first: an idle outbox (the usual case) never takes SQLite's write lock, which
    the group writer committing pings on the event loop would otherwise find taken.
    """
    free = or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now)
    due = select(WebhookDelivery.id).where(
        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, free
    )
    if await conn.scalar(due.limit(1)) is None:
        return []
    candidates = (
        due.order_by(WebhookDelivery.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
    )
    statement = (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id.in_(candidates.scalar_subquery()),
            WebhookDelivery.status == "pending",
            free,
        )
        .values(lease_until=until)
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.method,
            WebhookDelivery.url,
            WebhookDelivery.headers,
            WebhookDelivery.body,
            WebhookDelivery.attempts,
        )
    )
    return [leased_of(row) for row in await conn.execute(statement)]


def leased_of(row: Row[Any]) -> Leased:
    headers = row.headers if isinstance(row.headers, dict) else {}
    return Leased(
        id=row.id,
        method=row.method,
        url=row.url,
        headers=tuple((str(k), str(v)) for k, v in headers.items()),
        body=row.body,
        attempts=row.attempts,
    )


async def settle(conn: AsyncConnection, outcomes: Sequence[Settled]) -> None:
    """Record each attempt and move its delivery on (delivered, retried later, failed)."""
    if not outcomes:
        return
    attempts = [
        {
            "delivery_id": o.delivery_id,
            "at": o.at,
            "http_status": o.http_status,
            "error": o.error,
            "latency_ms": o.latency_ms,
        }
        for o in outcomes
    ]
    await conn.execute(INSERT_ATTEMPT, attempts)
    await conn.execute(SETTLE, [settle_params(o) for o in outcomes])


def settle_params(outcome: Settled) -> dict[str, Any]:
    return {
        "b_id": outcome.delivery_id,
        "b_status": outcome.status,
        "b_attempts": outcome.attempts,
        "b_next": outcome.next_attempt_at,
        "b_http_status": outcome.http_status,
        "b_error": outcome.error,
        "b_delivered_at": outcome.at if outcome.status == "delivered" else None,
    }


async def unlease(conn: AsyncConnection, ids: Iterable[str]) -> None:
    """Give deliveries back unsent (a dispatcher stopping): due again at once."""
    params = [{"b_id": delivery_id} for delivery_id in ids]
    if params:
        await conn.execute(UNLEASE, params)


async def expire_reservations(conn: AsyncConnection, now: datetime) -> list[tuple[str, int]]:
    """Mark live reservations past `expires_at` expired; (uuid, campaign_id) of each."""
    rows = await conn.execute(EXPIRED_RETURNING, {"b_now": now})
    return [(row.uuid, row.campaign_id) for row in rows]


async def reservations_by_uuid(conn: AsyncConnection, uuids: Sequence[str]) -> list[Row[Any]]:
    """What pixels say of reservations: who, which caller, what it paid, its tags."""
    r = Reservation
    query = select(
        r.uuid,
        r.company_id,
        r.campaign_id,
        r.publisher_id,
        r.caller_number,
        r.tags,
        r.payout,
        r.revenue,
        r.inbound_number,
        r.target_id,
    )
    found: list[Row[Any]] = []
    for start in range(0, len(uuids), CHUNK):
        chunk = list(uuids[start : start + CHUNK])
        found.extend(await conn.execute(query.where(r.uuid.in_(chunk))))
    return found


async def insert_deliveries(conn: AsyncConnection, ops: Sequence[WriteOp]) -> None:
    """Outbox rows written on `conn`'s transaction (the one of their event)."""
    if ops:
        await conn.execute(INSERT_DELIVERY, [op.params for op in ops])


async def purge_deliveries(conn: AsyncConnection, *, older_than: datetime) -> int:
    """Delete settled deliveries (and their attempts) created before `older_than`; pending
    ones stay until they settle."""
    result = await conn.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.created_at < older_than, WebhookDelivery.status != "pending"
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
