"""What a ping asks of the hot state, and the pure arithmetic every hot-state store applies.

A ping becomes one `ReserveOrder`: rate limit, ping shield, caller recency, publisher caps and an
ordered list of candidate targets with their cap subjects. A store executes the whole order as
one atomic step (in-process: one synchronous call; Redis: one Lua script) and answers with a
`ReserveResult`. Stores hold counters and sets; every rule lives here so that each store
applies the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from callbid.domain.hours import period_buckets
from callbid.domain.model import Caps, Publisher, Schedule, Target, TargetGroup


class ReserveStatus(StrEnum):
    RESERVED = "reserved"
    NO_TARGET = "no-target"
    RATE_LIMITED = "rate-limited"
    SHIELDED = "shielded"
    DUPLICATE = "duplicate"
    PUBLISHER_CAPPED = "publisher-capped"
    NO_POOL_NUMBER = "no-pool-number"
    UNPRICED = "unpriced"
    AVAILABLE = "available"


class HoldStatus(StrEnum):
    HELD = "held"
    CAPPED = "capped"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PeriodCap:
    """A per-period limit; `counter` names the bucket it counts in (e.g. `t7:d20261123`)."""

    name: str
    counter: str
    limit: int


@dataclass(frozen=True, slots=True)
class SubjectUsage:
    """What a cap subject holds now: reservations and calls in flight (`in_use`, what a
    concurrency cap limits), those not counted yet (`pending`), and each period counter."""

    key: str
    in_use: int
    pending: int
    counts: Mapping[str, int]

    def used(self, counter: str) -> int:
        """A period's use as its cap sees it: counted calls plus pending reservations."""
        return self.counts.get(counter, 0) + self.pending


@dataclass(frozen=True, slots=True)
class CapSubject:
    """Something a reservation counts against: a target, one of its groups, or a publisher.

    `label` prefixes the reason (`capped:group-3:daily`); empty for the target itself.
    """

    key: str
    label: str
    concurrency: int | None
    periods: tuple[PeriodCap, ...]


@dataclass(frozen=True, slots=True)
class PayoutOption:
    """One conversion criterion's offer; it applies when the caller was last seen at least
    `window` seconds ago (or never)."""

    criterion_id: int | None
    window: int
    seconds: int
    revenue: float


@dataclass(frozen=True, slots=True)
class Candidate:
    """An eligible target in routing order. `payouts[i]` is the payout under option i; None
    when it cannot be known before the call converts.

    A buyer's live answer may override the option's `revenue` (its bid) and `seconds`, and
    give the `inbound_number` the publisher transfers to (then no pool number is taken).
    """

    target_id: int
    subjects: tuple[CapSubject, ...]
    dedupe_seconds: int
    payouts: tuple[float | None, ...]
    revenue: float | None = None
    seconds: int | None = None
    inbound_number: str | None = None


@dataclass(frozen=True, slots=True)
class RateRule:
    key: str
    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class ReserveOrder:
    """Everything one ping asks of the hot state, in epoch seconds.

    `hold` makes the reservation count against caps from now until it is claimed, released or
    expires. A pool number (`pool`) is taken exclusively; `inbound_number` is shared.

    A `probe` changes nothing but the rate limit: it applies every rule up to the candidates and
    answers `available` (with the blocked ones) when at least one could take the ping, so that
    only buyers with capacity are pinged before the real order is sent (without `rate`).
    """

    namespace: str
    uuid: str
    now: float
    expires_at: float
    hold: bool
    caller_number: str | None
    inbound_number: str | None
    pool: tuple[str, ...]
    rate: RateRule | None
    shield_key: str | None
    seen_key: str | None
    seen_ttl: int
    publisher: CapSubject | None
    options: tuple[PayoutOption, ...]
    candidates: tuple[Candidate, ...]
    probe: bool = False


@dataclass(frozen=True, slots=True)
class LiveReservation:
    """A reservation as the hot state keeps it until it expires, is claimed or released."""

    uuid: str
    target_id: int
    inbound_number: str
    caller_number: str | None
    payout: float
    seconds: int
    revenue: float
    criterion_id: int | None
    expires_at: float
    holds: bool
    subject_keys: tuple[str, ...]
    shield_key: str | None
    pool_number: str | None


@dataclass(frozen=True, slots=True)
class CallHold:
    """What a live call holds in the hot state: a slot on each of `subject_keys` (target,
    groups, publisher) until it ends or `until` passes (a call whose end is never reported),
    and, once it counts (on connect or on conversion, by the target's cap trigger), one more in
    each period counter of `counters`.

    Slot members are `call:<call_key>`, beside reservations' uuids in the same sets.
    """

    call_key: str
    target_id: int
    subject_keys: tuple[str, ...]
    counters: tuple[str, ...]
    until: float
    counted: bool = False

    @property
    def member(self) -> str:
        return call_member(self.call_key)


def call_member(call_key: str) -> str:
    return f"call:{call_key}"


def period_counters(subjects: tuple[CapSubject, ...]) -> tuple[str, ...]:
    """Every period counter a call on `subjects` counts in once it counts."""
    return tuple(cap.counter for subject in subjects for cap in subject.periods)


def match_key(inbound_number: str, caller_number: str) -> str:
    """The index entry a call from `caller_number` to `inbound_number` finds its reservation
    by (pool numbers are found by number alone, through the pool index)."""
    return f"m:{inbound_number}|{caller_number}"


@dataclass(frozen=True, slots=True)
class ReserveResult:
    status: ReserveStatus
    record: LiveReservation | None = None
    blocked: tuple[tuple[int, str], ...] = ()
    last_seen: float | None = None
    retry_after: float = 0.0


def namespace(company_id: int) -> str:
    """The hot-state namespace of a company: all its keys live together (one Redis slot)."""
    return f"co{company_id}"


def blocking_cap(
    subject: CapSubject, live: int, pending: int, counters: Mapping[str, int]
) -> str | None:
    """The reason `subject` cannot take one more reservation, or None when it can.

    `live` counts reservations and calls in flight (concurrency); `pending` counts those not yet
    in the period counters, so a period cap sees `counter + pending`.
    """
    if subject.concurrency is not None and live >= subject.concurrency:
        return capped_reason(subject, "concurrency")
    for cap in subject.periods:
        if counters.get(cap.counter, 0) + pending >= cap.limit:
            return capped_reason(subject, cap.name)
    return None


def capped_reason(subject: CapSubject, cap: str) -> str:
    """Why `subject` refuses: `capped:<cap>`, or `capped:<label>:<cap>` for a group or publisher."""
    return f"capped:{subject.label}:{cap}" if subject.label else f"capped:{cap}"


def choose_option(
    options: tuple[PayoutOption, ...], last_seen: float | None, now: float
) -> int | None:
    """Index of the first option whose de-dupe window has passed; None when the caller is a
    duplicate for every one."""
    for index, option in enumerate(options):
        if option.window <= 0 or last_seen is None or now - last_seen >= option.window:
            return index
    return None


def is_duplicate(dedupe_seconds: int, last_seen: float | None, now: float) -> bool:
    return dedupe_seconds > 0 and last_seen is not None and now - last_seen < dedupe_seconds


EPSILON = 1e-6


def gcra(tat: float | None, now: float, rule: RateRule) -> tuple[float | None, float]:
    """Generic cell rate algorithm: (new theoretical arrival time, 0) when the request passes,
    (None, seconds to wait) when it is over the rate."""
    interval = 1.0 / rule.per_second
    tolerance = interval * max(rule.burst - 1, 0)
    start = now if tat is None or tat < now else tat
    wait = start - now - tolerance
    # Epoch floats step by ~2.4e-7 s; a wait below a microsecond is rounding, not a rate.
    if wait > EPSILON:
        return None, wait
    return start + interval, 0.0


def cap_subject(key: str, label: str, caps: Caps, schedule: Schedule, now: datetime) -> CapSubject:
    """The cap subject for `caps`, period buckets on the wall clock of `schedule`'s zone."""
    periods: list[PeriodCap] = []
    if caps.hourly is not None or caps.daily is not None or caps.monthly is not None:
        hour, day, month = period_buckets(now, schedule)
        for name, limit, bucket in (
            ("hourly", caps.hourly, f"h{hour}"),
            ("daily", caps.daily, f"d{day}"),
            ("monthly", caps.monthly, f"m{month}"),
        ):
            if limit is not None:
                periods.append(PeriodCap(name, f"{key}:{bucket}", limit))
    if caps.lifetime is not None:
        periods.append(PeriodCap("lifetime", f"{key}:life", caps.lifetime))
    return CapSubject(key, label, caps.concurrency, tuple(periods))


def target_subjects(
    target: Target, groups: Mapping[int, TargetGroup], now: datetime
) -> tuple[CapSubject, ...]:
    """The target's own cap subject followed by one per group it belongs to."""
    subjects = [cap_subject(f"t{target.id}", "", target.caps, target.schedule, now)]
    for group_id in target.group_ids:
        group = groups.get(group_id)
        if group is not None:
            schedule = Schedule(tz=group.tz)
            subjects.append(
                cap_subject(f"g{group.id}", f"group-{group.id}", group.caps, schedule, now)
            )
    return tuple(subjects)


def publisher_subject(publisher: Publisher, now: datetime) -> CapSubject | None:
    if not publisher.caps.any():
        return None
    return cap_subject(
        f"p{publisher.publisher_id}", "publisher", publisher.caps, publisher.schedule, now
    )
