"""The hot-state protocol every store implements, atomically per call."""

from __future__ import annotations

from typing import Protocol

from callbid.domain.reserve import (
    CapSubject,
    HoldStatus,
    LiveReservation,
    ReserveOrder,
    ReserveResult,
)


class HotState(Protocol):
    """Counters, slots and live reservations shared by every worker.

    Each method is one atomic step: no other call interleaves with it, whichever process
    makes it. Times are epoch seconds supplied by the caller, never read from a clock.

    `rebuilt_from_database` is true for a store that loses its state with its process and
    is rebuilt at start from the database, which must then also keep caller recency.
    """

    rebuilt_from_database: bool

    async def reserve(self, order: ReserveOrder) -> ReserveResult:
        """Execute a ping's order: rate limit, shield, recency, publisher caps, then the first
        candidate with room is reserved (and held when `order.hold`)."""
        ...

    async def get(self, namespace: str, uuid: str, now: float) -> LiveReservation | None:
        """The live (unexpired, unreleased) reservation `uuid`, or None."""
        ...

    async def hold(
        self, namespace: str, uuid: str, subjects: tuple[CapSubject, ...], now: float
    ) -> tuple[HoldStatus, str | None]:
        """Make a live reservation count against `subjects` until it ends (confirmation).

        HELD when it now holds (or already did), CAPPED with the reason when a subject is
        full, UNKNOWN when the reservation is not live."""
        ...

    async def release(self, namespace: str, uuid: str) -> LiveReservation | None:
        """End a reservation at once: free its slots, shield entry and pool number.
        Returns what was released (possibly already past its expiry, which frees nothing
        more), None when the store does not know it."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
