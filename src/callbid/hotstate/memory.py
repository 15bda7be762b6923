"""In-process hot state for one worker; rebuilt from the database after a restart."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from callbid.domain.reserve import (
    CallHold,
    Candidate,
    CapSubject,
    HoldStatus,
    LiveReservation,
    ReserveOrder,
    ReserveResult,
    ReserveStatus,
    SubjectUsage,
    blocking_cap,
    choose_option,
    gcra,
    is_duplicate,
    match_key,
    period_counters,
)


class MemoryHotState:
    """The hot state in dictionaries. Every method runs without awaiting anything, so on one
    event loop each call is atomic. Durability comes from the database: `load` puts back the
    live reservations and recent callers that were committed before a restart."""

    rebuilt_from_database = True

    def __init__(self) -> None:
        self._records: dict[str, LiveReservation] = {}
        self._shield: dict[str, str] = {}
        self._pool: dict[str, str] = {}
        self._live: dict[str, dict[str, float]] = {}
        self._pending: dict[str, dict[str, float]] = {}
        self._counters: dict[str, int] = {}
        self._seen: dict[str, tuple[float, float]] = {}
        self._rate: dict[str, float] = {}
        # Reservations by inbound number and caller (several when the shield is off).
        self._match: dict[str, dict[str, float]] = {}
        self._calls: dict[str, CallHold] = {}
        # What each call claimed, so that the same call claiming again gets the same answer.
        self._claimed: dict[str, LiveReservation] = {}
        self._call_expiries: list[tuple[float, str]] = []
        # (expiry, key) heaps, so that pruning touches only what expired.
        self._record_expiries: list[tuple[float, str]] = []
        self._seen_expiries: list[tuple[float, str]] = []

    async def reserve(self, order: ReserveOrder) -> ReserveResult:
        return self.reserve_now(order)

    async def preview(self, order: ReserveOrder) -> ReserveResult:
        return self.reserve_now(order, dry=True)

    def reserve_now(self, order: ReserveOrder, *, dry: bool = False) -> ReserveResult:
        """`reserve`, synchronously; `dry` answers the same and stores nothing at all."""
        ns, now = order.namespace, order.now
        prior = self._records.get(f"{ns}:{order.uuid}")
        if prior is not None:  # a retried order changes nothing more
            return ReserveResult(ReserveStatus.RESERVED, record=prior)
        if order.rate is not None:
            rate_key = f"{ns}:{order.rate.key}"
            tat, wait = gcra(self._rate.get(rate_key), now, order.rate)
            if tat is None:
                return ReserveResult(ReserveStatus.RATE_LIMITED, retry_after=wait)
            if not dry:
                self._rate[rate_key] = tat
        if order.shield_key is not None:
            existing = self._live_record(ns, self._shield.get(f"{ns}:{order.shield_key}"), now)
            if existing is not None:
                return ReserveResult(ReserveStatus.SHIELDED, record=existing)
        last_seen = self._last_seen(ns, order.seen_key, now)
        option = choose_option(order.options, last_seen, now)
        if option is None:
            return ReserveResult(ReserveStatus.DUPLICATE, last_seen=last_seen)
        if order.publisher is not None and self._blocking(ns, order.publisher, now):
            return ReserveResult(ReserveStatus.PUBLISHER_CAPPED, last_seen=last_seen)
        blocked: list[tuple[int, str]] = []
        for candidate in order.candidates:
            reason = self._candidate_blocked(ns, candidate, last_seen, now)
            if reason is not None:
                blocked.append((candidate.target_id, reason))
                continue
            if order.probe:
                continue
            payout = candidate.payouts[option]
            if payout is None:
                return ReserveResult(
                    ReserveStatus.UNPRICED, blocked=tuple(blocked), last_seen=last_seen
                )
            inbound, pool_number = candidate.inbound_number or order.inbound_number, None
            if order.pool and candidate.inbound_number is None:
                pool_number = next((n for n in order.pool if self._pool_free(ns, n, now)), None)
                if pool_number is None:
                    return ReserveResult(
                        ReserveStatus.NO_POOL_NUMBER, blocked=tuple(blocked), last_seen=last_seen
                    )
                inbound = pool_number
            assert inbound is not None
            subjects = candidate.subjects + ((order.publisher,) if order.publisher else ())
            picked = order.options[option]
            record = LiveReservation(
                uuid=order.uuid,
                target_id=candidate.target_id,
                inbound_number=inbound,
                caller_number=order.caller_number,
                payout=payout,
                seconds=picked.seconds if candidate.seconds is None else candidate.seconds,
                revenue=picked.revenue if candidate.revenue is None else candidate.revenue,
                criterion_id=picked.criterion_id,
                expires_at=order.expires_at,
                holds=order.hold,
                subject_keys=tuple(s.key for s in subjects),
                shield_key=order.shield_key,
                pool_number=pool_number,
            )
            if dry:
                return ReserveResult(ReserveStatus.RESERVED, record, tuple(blocked), last_seen)
            self._store(ns, record, now)
            if order.seen_key is not None:
                self._remember_seen(f"{ns}:{order.seen_key}", now, now + order.seen_ttl)
            return ReserveResult(ReserveStatus.RESERVED, record, tuple(blocked), last_seen)
        free = order.probe and len(blocked) < len(order.candidates)
        status = ReserveStatus.AVAILABLE if free else ReserveStatus.NO_TARGET
        return ReserveResult(status, blocked=tuple(blocked), last_seen=last_seen)

    def _candidate_blocked(
        self, ns: str, candidate: Candidate, last_seen: float | None, now: float
    ) -> str | None:
        if is_duplicate(candidate.dedupe_seconds, last_seen, now):
            return "duplicate"
        return next(filter(None, (self._blocking(ns, s, now) for s in candidate.subjects)), None)

    async def get(self, namespace: str, uuid: str, now: float) -> LiveReservation | None:
        return self._live_record(namespace, uuid, now)

    async def hold(
        self, namespace: str, uuid: str, subjects: tuple[CapSubject, ...], now: float
    ) -> tuple[HoldStatus, str | None]:
        record = self._live_record(namespace, uuid, now)
        if record is None:
            return HoldStatus.UNKNOWN, None
        if record.holds:
            return HoldStatus.HELD, None
        reason = next(filter(None, (self._blocking(namespace, s, now) for s in subjects)), None)
        if reason is not None:
            return HoldStatus.CAPPED, reason
        held = replace(record, holds=True, subject_keys=tuple(s.key for s in subjects))
        self._records[f"{namespace}:{uuid}"] = held
        self._take_slots(namespace, held)
        return HoldStatus.HELD, None

    async def release(self, namespace: str, uuid: str) -> LiveReservation | None:
        record = self._records.pop(f"{namespace}:{uuid}", None)
        if record is None:
            return None
        self._forget(namespace, record)
        return record

    async def claim(
        self,
        namespace: str,
        call_key: str,
        dialled: str,
        caller: str | None,
        now: float,
        until: float,
    ) -> LiveReservation | None:
        ns = namespace
        prior = self._claimed.get(f"{ns}:{call_key}")
        if prior is not None:
            return prior
        record = None
        if caller is not None:
            matches = self._match.get(f"{ns}:{match_key(dialled, caller)}", {})
            live = [(expiry, uuid) for uuid, expiry in matches.items() if expiry > now]
            record = self._live_record(ns, max(live)[1], now) if live else None
        if record is None:
            record = self._live_record(ns, self._pool.get(f"{ns}:{dialled}"), now)
        if record is None or record.inbound_number != dialled:
            return None
        del self._records[f"{ns}:{record.uuid}"]
        self._forget(ns, record)
        self._claimed[f"{ns}:{call_key}"] = record
        heapq.heappush(self._call_expiries, (until, f"{ns}:{call_key}"))
        if record.holds:
            hold = CallHold(call_key, record.target_id, record.subject_keys, (), until)
            self._hold_call(ns, hold)
        return record

    async def dial(
        self,
        namespace: str,
        call_key: str,
        target_id: int,
        subjects: tuple[CapSubject, ...],
        now: float,
        until: float,
    ) -> tuple[HoldStatus, str | None]:
        ns = namespace
        held = self._calls.get(f"{ns}:{call_key}")
        if held is not None and held.target_id == target_id:
            self._calls[f"{ns}:{call_key}"] = replace(held, counters=period_counters(subjects))
            return HoldStatus.HELD, None
        if held is not None:
            self._let_go(ns, held)
        reason = next(filter(None, (self._blocking(ns, s, now) for s in subjects)), None)
        if reason is not None:
            return HoldStatus.CAPPED, reason
        keys = tuple(s.key for s in subjects)
        self._hold_call(ns, CallHold(call_key, target_id, keys, period_counters(subjects), until))
        return HoldStatus.HELD, None

    async def count_call(self, namespace: str, call_key: str, now: float) -> bool:
        held = self._calls.get(f"{namespace}:{call_key}")
        if held is None or held.counted:
            return False
        self._count_hold(namespace, held)
        return True

    async def end_call(
        self, namespace: str, call_key: str, count: bool, now: float
    ) -> CallHold | None:
        held = self._calls.get(f"{namespace}:{call_key}")
        if held is None:
            return None
        if count and not held.counted:
            held = self._count_hold(namespace, held)
        self._let_go(namespace, held)
        return held

    async def restore_calls(
        self, namespace: str, holds: Sequence[CallHold], counts: Mapping[str, int], now: float
    ) -> int:
        for counter, count in counts.items():
            key = f"{namespace}:{counter}"
            self._counters[key] = max(self._counters.get(key, 0), count)
        restored = 0
        for hold in holds:
            if hold.until > now and f"{namespace}:{hold.call_key}" not in self._calls:
                self._hold_call(namespace, hold)
                restored += 1
        return restored

    def _hold_call(self, ns: str, hold: CallHold) -> None:
        self._calls[f"{ns}:{hold.call_key}"] = hold
        heapq.heappush(self._call_expiries, (hold.until, f"{ns}:{hold.call_key}"))
        for key in hold.subject_keys:
            self._live.setdefault(f"{ns}:{key}", {})[hold.member] = hold.until
            if not hold.counted:
                self._pending.setdefault(f"{ns}:{key}", {})[hold.member] = hold.until

    def _count_hold(self, ns: str, hold: CallHold) -> CallHold:
        for counter in hold.counters:
            self._counters[f"{ns}:{counter}"] = self._counters.get(f"{ns}:{counter}", 0) + 1
        for key in hold.subject_keys:
            self._pending.get(f"{ns}:{key}", {}).pop(hold.member, None)
        counted = replace(hold, counted=True)
        self._calls[f"{ns}:{hold.call_key}"] = counted
        return counted

    def _let_go(self, ns: str, hold: CallHold) -> None:
        del self._calls[f"{ns}:{hold.call_key}"]
        for key in hold.subject_keys:
            self._live.get(f"{ns}:{key}", {}).pop(hold.member, None)
            self._pending.get(f"{ns}:{key}", {}).pop(hold.member, None)

    async def close(self) -> None:
        self._records.clear()

    def load(self, namespace: str, records: Iterable[LiveReservation], now: float) -> int:
        """Put back live reservations read from the database; returns how many were live."""
        count = 0
        for record in records:
            if record.expires_at > now and f"{namespace}:{record.uuid}" not in self._records:
                self._store(namespace, record, now)
                count += 1
        return count

    def load_seen(self, namespace: str, key: str, seen_at: float, keep_until: float) -> None:
        self._remember_seen(f"{namespace}:{key}", seen_at, keep_until)

    def _remember_seen(self, key: str, seen_at: float, keep_until: float) -> None:
        self._seen[key] = (seen_at, keep_until)
        heapq.heappush(self._seen_expiries, (keep_until, key))

    def prune(self, now: float) -> int:
        """Drop expired reservations and stale entries; returns reservations dropped.

        Costs what expired, not what is live: a full scan of tens of thousands of live
        reservations stalled the event loop for milliseconds every sweep."""
        dropped = 0
        expiries = self._record_expiries
        while expiries and expiries[0][0] <= now:
            _, key = heapq.heappop(expiries)
            record = self._records.get(key)
            if record is not None and record.expires_at <= now:
                del self._records[key]
                self._forget(key.rsplit(":", 1)[0], record)
                dropped += 1
        seen = self._seen_expiries
        while seen and seen[0][0] <= now:
            _, key = heapq.heappop(seen)
            entry = self._seen.get(key)
            if entry is not None and entry[1] <= now:
                del self._seen[key]
        self._rate = {k: v for k, v in self._rate.items() if v > now}
        calls = self._call_expiries
        while calls and calls[0][0] <= now:
            _, key = heapq.heappop(calls)
            hold = self._calls.get(key)
            if hold is not None and hold.until <= now:
                self._let_go(key.rsplit(":", 1)[0], hold)
            self._claimed.pop(key, None)
        return dropped

    def _store(self, ns: str, record: LiveReservation, now: float) -> None:
        key = f"{ns}:{record.uuid}"
        self._records[key] = record
        heapq.heappush(self._record_expiries, (record.expires_at, key))
        if record.shield_key is not None:
            self._shield[f"{ns}:{record.shield_key}"] = record.uuid
        if record.pool_number is not None:
            self._pool[f"{ns}:{record.pool_number}"] = record.uuid
        if record.caller_number is not None:
            matched = f"{ns}:{match_key(record.inbound_number, record.caller_number)}"
            self._match.setdefault(matched, {})[record.uuid] = record.expires_at
        if record.holds:
            self._take_slots(ns, record)

    def _take_slots(self, ns: str, record: LiveReservation) -> None:
        for key in record.subject_keys:
            self._live.setdefault(f"{ns}:{key}", {})[record.uuid] = record.expires_at
            self._pending.setdefault(f"{ns}:{key}", {})[record.uuid] = record.expires_at

    def _forget(self, ns: str, record: LiveReservation) -> None:
        if (
            record.shield_key is not None
            and self._shield.get(f"{ns}:{record.shield_key}") == record.uuid
        ):
            del self._shield[f"{ns}:{record.shield_key}"]
        if (
            record.pool_number is not None
            and self._pool.get(f"{ns}:{record.pool_number}") == record.uuid
        ):
            del self._pool[f"{ns}:{record.pool_number}"]
        if record.caller_number is not None:
            matched = f"{ns}:{match_key(record.inbound_number, record.caller_number)}"
            entries = self._match.get(matched)
            if entries is not None:
                entries.pop(record.uuid, None)
                if not entries:
                    del self._match[matched]
        for key in record.subject_keys:
            self._live.get(f"{ns}:{key}", {}).pop(record.uuid, None)
            self._pending.get(f"{ns}:{key}", {}).pop(record.uuid, None)

    def _live_record(self, ns: str, uuid: str | None, now: float) -> LiveReservation | None:
        if uuid is None:
            return None
        record = self._records.get(f"{ns}:{uuid}")
        if record is None or record.expires_at <= now:
            return None
        return record

    def _pool_free(self, ns: str, number: str, now: float) -> bool:
        return self._live_record(ns, self._pool.get(f"{ns}:{number}"), now) is None

    def _last_seen(self, ns: str, key: str | None, now: float) -> float | None:
        if key is None:
            return None
        entry = self._seen.get(f"{ns}:{key}")
        return entry[0] if entry is not None and entry[1] > now else None

    def _count(self, table: dict[str, dict[str, float]], key: str, now: float) -> int:
        slots = table.get(key)
        if not slots:
            return 0
        return sum(1 for exp in slots.values() if exp > now)

    async def usage(
        self, namespace: str, subjects: Sequence[CapSubject], now: float
    ) -> tuple[SubjectUsage, ...]:
        return tuple(self._usage(namespace, subject, now) for subject in subjects)

    def _usage(self, ns: str, subject: CapSubject, now: float) -> SubjectUsage:
        key = f"{ns}:{subject.key}"
        counts = {c.counter: self._counters.get(f"{ns}:{c.counter}", 0) for c in subject.periods}
        return SubjectUsage(
            subject.key,
            self._count(self._live, key, now),
            self._count(self._pending, key, now),
            counts,
        )

    def _blocking(self, ns: str, subject: CapSubject, now: float) -> str | None:
        # Only what `blocking_cap` will read is counted: most subjects have one kind of cap
        # and many none, and every count walks the subject's live reservations.
        if subject.concurrency is None and not subject.periods:
            return None
        key = f"{ns}:{subject.key}"
        live = self._count(self._live, key, now) if subject.concurrency is not None else 0
        pending = self._count(self._pending, key, now) if subject.periods else 0
        counters = {c.counter: self._counters.get(f"{ns}:{c.counter}", 0) for c in subject.periods}
        return blocking_cap(subject, live, pending, counters)
