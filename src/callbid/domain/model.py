"""Business nouns of callbid: immutable snapshots of configuration and of requests made on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from callbid.domain.buyers import Passthrough

if TYPE_CHECKING:  # pixels.py reads TagRule from here
    from callbid.domain.pixels import Webhook

UTC = ZoneInfo("UTC")


class RoutingStrategy(StrEnum):
    PRIORITY = "priority"
    BID = "bid"


class CapTrigger(StrEnum):
    CONNECT = "connect"
    CONVERSION = "conversion"


class ShieldScope(StrEnum):
    KEY = "key"
    CAMPAIGN = "campaign"
    OFF = "off"


class PayoutKind(StrEnum):
    FIXED = "fixed"
    REVSHARE = "revshare"


class ListKind(StrEnum):
    BLOCK = "block"
    ALLOW = "allow"


class FilterOp(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    IN = "in"
    NOT_IN = "not_in"
    BEGINS_WITH = "begins_with"
    CONTAINS = "contains"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    GREATER_THAN = "greater_than"
    LESS_THAN = "less_than"


@dataclass(frozen=True, slots=True)
class HoursBlock:
    """An opening block on one weekday (0 = Monday), in minutes after local midnight.

    `close <= open` means the block runs overnight into the next day; `open == close == 0`
    means the whole day.
    """

    weekday: int
    open: int
    close: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """Business hours in a time zone; no blocks means open around the clock."""

    tz: ZoneInfo = UTC
    blocks: tuple[HoursBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class Caps:
    """Limits on calls in flight and per period; `None` means unlimited."""

    concurrency: int | None = None
    hourly: int | None = None
    daily: int | None = None
    monthly: int | None = None
    lifetime: int | None = None

    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.concurrency, self.hourly, self.daily, self.monthly, self.lifetime)
        )


@dataclass(frozen=True, slots=True)
class TagRule:
    """A filter `tag op value`; `values` holds the list for `in` / `not_in`."""

    tag: str
    op: FilterOp
    values: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.op in (FilterOp.EXISTS, FilterOp.NOT_EXISTS):
            return f"{self.tag} {self.op}"
        return f"{self.tag} {self.op} {','.join(self.values)}"


@dataclass(frozen=True, slots=True)
class CallerList:
    kind: ListKind
    numbers: frozenset[str]


@dataclass(frozen=True, slots=True)
class TargetGroup:
    id: int
    name: str
    caps: Caps = Caps()
    tz: ZoneInfo = UTC


@dataclass(frozen=True, slots=True)
class Target:
    id: int
    name: str
    destination: str
    priority: int = 1
    weight: int = 1
    paused: bool = False
    schedule: Schedule = Schedule()
    caps: Caps = Caps()
    cap_trigger: CapTrigger = CapTrigger.CONNECT
    rules: tuple[TagRule, ...] = ()
    caller_list: CallerList | None = None
    ring_timeout: int = 30
    dedupe_seconds: int = 0
    group_ids: tuple[int, ...] = ()
    #: The buyer's own ping API, asked for availability and a live bid before it is reserved.
    passthrough: Passthrough | None = None
    #: What the buyer pays per call when it has no live bid (ranks it when routing by bid).
    bid: float | None = None


@dataclass(frozen=True, slots=True)
class Publisher:
    publisher_id: str
    name: str = ""
    blocked: bool = False
    caps: Caps = Caps()
    schedule: Schedule = Schedule()


@dataclass(frozen=True, slots=True)
class ConversionCriterion:
    """Who is paid what once a connected call lasts `buffer_seconds`.

    `publisher_id None` matches every publisher. With `payout_kind` revshare, `payout` is the
    percentage of the winning bid paid to the publisher.
    """

    id: int
    name: str = ""
    publisher_id: str | None = None
    payout_kind: PayoutKind = PayoutKind.FIXED
    payout: float = 0.0
    revenue: float = 0.0
    buffer_seconds: int = 0
    rules: tuple[TagRule, ...] = ()
    dedupe_seconds: int = 0


@dataclass(frozen=True, slots=True)
class RtbKey:
    key: str
    company_id: int
    campaign_id: int
    ttl_seconds: int = 15
    timeout_seconds: float = 5.0
    paused: bool = False
    inbound_number: str | None = None
    allow_no_caller: bool = False
    count_on_reserved: bool = False
    strict_target: bool = False
    shield_scope: ShieldScope = ShieldScope.KEY
    rate_per_second: float | None = None
    rate_burst: int = 10


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign with everything a ping needs, loaded once and shared read-only."""

    id: int
    company_id: int
    name: str
    strategy: RoutingStrategy = RoutingStrategy.PRIORITY
    numbers: tuple[str, ...] = ()
    pool_numbers: tuple[str, ...] = ()
    targets: tuple[Target, ...] = ()
    groups: dict[int, TargetGroup] = field(default_factory=dict)
    criteria: tuple[ConversionCriterion, ...] = ()
    publishers: dict[str, Publisher] = field(default_factory=dict)
    blocked_callers: frozenset[str] = frozenset()
    #: Asked on every ping that has a candidate; its answer stands for every target without a
    #: passthrough of its own (e.g. a call centre's availability API).
    passthrough: Passthrough | None = None
    #: Derived: targets by id, and the ids of those with a passthrough of their own.
    by_id: dict[int, Target] = field(init=False, repr=False, compare=False)
    bidders: frozenset[int] = field(init=False, repr=False, compare=False)
    #: Pixels sent when its events happen (enabled ones only).
    webhooks: tuple[Webhook, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {t.id: t for t in self.targets})
        bidders = frozenset(t.id for t in self.targets if t.passthrough is not None)
        object.__setattr__(self, "bidders", bidders)

    @property
    def all_numbers(self) -> tuple[str, ...]:
        return self.numbers + self.pool_numbers

    def target(self, target_id: int) -> Target | None:
        return self.by_id.get(target_id)


@dataclass(frozen=True, slots=True)
class PingRequest:
    """A validated ping: caller number in E.164 (or None), tags lower-cased by name."""

    key: str
    publisher_id: str
    caller_number: str | None
    inbound_number: str | None
    tags: dict[str, str]
