"""The hot-state protocol every store implements, atomically per call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from callbid.domain.reserve import (
    CallHold,
    CapSubject,
    HoldStatus,
    LiveReservation,
    ReserveOrder,
    ReserveResult,
    SubjectUsage,
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

    async def preview(self, order: ReserveOrder) -> ReserveResult:
        """What `reserve(order)` would answer now, changing nothing at all (not even the rate
        limit): a `reserved` answer carries the record that would be stored."""
        ...

    async def usage(
        self, namespace: str, subjects: Sequence[CapSubject], now: float
    ) -> tuple[SubjectUsage, ...]:
        """Each subject's use at `now`, in order, changing nothing (for the console; not one
        atomic read across subjects)."""
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

    async def claim(
        self,
        namespace: str,
        call_key: str,
        dialled: str,
        caller: str | None,
        now: float,
        until: float,
    ) -> LiveReservation | None:
        """Claim the live reservation a call from `caller` to `dialled` was reserved for (the
        one with that inbound number and caller; for a pool number, the one holding it),
        at most once: the reservation ends here (shield, pool number, match entry freed) and
        its slots, when it held any, pass to the call `call_key` until `until` (see `dial`).

        Idempotent per call: the same `call_key` claiming again gets the same record. None
        when nothing live matches (expired, claimed by another call, other caller, none)."""
        ...

    async def dial(
        self,
        namespace: str,
        call_key: str,
        target_id: int,
        subjects: tuple[CapSubject, ...],
        now: float,
        until: float,
    ) -> tuple[HoldStatus, str | None]:
        """Make the call `call_key` hold `target_id`'s slots (`subjects`) while it is dialled
        and connected. A call holds one target at a time: dialling another lets go of the
        previous one first. Dialling the target it already holds (e.g. from its claimed
        reservation) checks nothing again. HELD, or CAPPED with the reason (the call then
        holds nothing)."""
        ...

    async def count_call(self, namespace: str, call_key: str, now: float) -> bool:
        """Count the call in its period counters (once); True when it counted now."""
        ...

    async def end_call(
        self, namespace: str, call_key: str, count: bool, now: float
    ) -> CallHold | None:
        """The call ended: free its slots, counting it first when `count` and it had not yet.
        Returns what it held, None when it held nothing."""
        ...

    async def restore_calls(
        self, namespace: str, holds: Sequence[CallHold], counts: Mapping[str, int], now: float
    ) -> int:
        """Put back live calls' holds and period counts read from the database (after a
        restart, or Redis losing its data); what the store still has is left alone. Returns
        how many holds were put back."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
