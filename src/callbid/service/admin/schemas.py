"""Configuration commands and views: one Create/Update/Out trio per entity (API bodies too)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from callbid.domain.model import CapTrigger, ListKind, PayoutKind, RoutingStrategy, ShieldScope
from callbid.service.admin.fields import (
    UNSET,
    CampaignId,
    CapsIn,
    CapsOut,
    CapsPatch,
    Destination,
    Filters,
    Hours,
    HoursBlockOut,
    Id,
    IdList,
    InModel,
    Money,
    Name,
    NumberList,
    OptionalName,
    OutModel,
    PatchModel,
    PhoneNumber,
    PingTimeout,
    Priority,
    PublisherId,
    RateBurst,
    RatePerSecond,
    RingTimeout,
    Seconds,
    TagFilterOut,
    TimeZone,
    Ttl,
    Weight,
)
from callbid.service.admin.passthrough import PassthroughIn

REVSHARE_MAX = 100.0


def check_payout(kind: PayoutKind, payout: float) -> None:
    """ValueError when a revshare payout is not a percentage."""
    if kind is PayoutKind.REVSHARE and payout > REVSHARE_MAX:
        raise ValueError("a revshare payout is a percentage of the bid: 0 to 100")


# --- company -------------------------------------------------------------------------------


class CompanyOut(OutModel):
    """The company (tenant) the token belongs to."""

    id: int
    name: str
    carrier_auth_token_set: bool = Field(
        description="whether a carrier auth token is set (it is never shown)"
    )
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _mask_token(cls, data: Any) -> Any:
        if hasattr(data, "carrier_auth_token"):
            return {
                "id": data.id,
                "name": data.name,
                "carrier_auth_token_set": bool(data.carrier_auth_token),
                "created_at": data.created_at,
            }
        return data


class CompanyUpdate(PatchModel):
    name: Name = Field(UNSET, description="company name")
    carrier_auth_token: str | None = Field(
        UNSET,
        min_length=8,
        max_length=200,
        description="the carrier account's auth token (Twilio's), which signs its voice "
        "webhooks; requests to /twilio/* for this company's numbers are refused without it",
    )


# --- campaigns -----------------------------------------------------------------------------


class CampaignCreate(InModel):
    """A campaign: routing pool, routing strategy and blocked callers."""

    name: Name
    routing_strategy: RoutingStrategy = Field(
        RoutingStrategy.PRIORITY, description="priority/weight order, or the highest live bid"
    )
    target_ids: IdList = Field(default_factory=list, description="the routing pool")
    blocked_list_ids: IdList = Field(
        default_factory=list, description="block-kind caller lists refused on every target"
    )
    passthrough: PassthroughIn | None = Field(
        None,
        description="asked on every ping; its answer stands for targets without their own",
    )


class CampaignUpdate(PatchModel):
    """Campaign fields to change; lists given replace the stored ones."""

    name: Name = Field(UNSET)
    routing_strategy: RoutingStrategy = Field(UNSET)
    target_ids: IdList = Field(UNSET, description="replaces the routing pool")
    blocked_list_ids: IdList = Field(UNSET, description="replaces the blocked caller lists")
    passthrough: PassthroughIn | None = Field(UNSET, description="null removes it")


class CampaignOut(OutModel):
    """A campaign; `target_ids` is its routing pool."""

    id: int
    name: str
    routing_strategy: RoutingStrategy
    target_ids: list[int]
    blocked_list_ids: list[int]
    passthrough: dict[str, Any] | None
    created_at: datetime


# --- number pools and tracking numbers -----------------------------------------------------


class NumberPoolCreate(InModel):
    """Tracking numbers for pings without caller: one live reservation per pool number."""

    campaign_id: CampaignId
    name: Name


class NumberPoolUpdate(PatchModel):
    campaign_id: CampaignId = Field(UNSET, description="only while the pool holds no numbers")
    name: Name = Field(UNSET)


class NumberPoolOut(OutModel):
    """A number pool of a campaign."""

    id: int
    campaign_id: int
    name: str


class TrackingNumberCreate(InModel):
    """A tracking number answered as `inbound_number`; unique across callbid."""

    campaign_id: CampaignId
    number: PhoneNumber
    pool_id: Id | None = Field(
        None, description="a number pool of the same campaign (for pings without caller)"
    )


class TrackingNumberUpdate(PatchModel):
    campaign_id: CampaignId = Field(UNSET)
    number: PhoneNumber = Field(UNSET)
    pool_id: Id | None = Field(UNSET, description="null takes the number out of its pool")


class TrackingNumberOut(OutModel):
    """A tracking number in E.164."""

    id: int
    campaign_id: int
    number: str
    pool_id: int | None


# --- targets and target groups -------------------------------------------------------------


class TargetCreate(CapsIn):
    """A target (buyer): where calls go, when, how many and for which callers."""

    name: Name
    destination: Destination
    priority: Priority = 1
    weight: Weight = 1
    paused: bool = False
    timezone: TimeZone = "UTC"
    hours: Hours = Field(default_factory=list)
    cap_trigger: CapTrigger = Field(
        CapTrigger.CONNECT, description="count a call against caps on connect or on conversion"
    )
    filters: Filters = Field(default_factory=list)
    caller_list_id: Id | None = Field(None, description="a caller list (block or allow)")
    ring_timeout: RingTimeout = 30
    dedupe_seconds: Seconds = Field(0, description="refuse a repeat caller within this window")
    group_ids: IdList = Field(default_factory=list, description="target groups it belongs to")
    passthrough: PassthroughIn | None = Field(
        None, description="the buyer's ping API, asked for availability and a bid on each ping"
    )
    bid: Money | None = Field(
        None, description="static bid: what the buyer pays per call without a live bid"
    )


class TargetUpdate(CapsPatch):
    """Target fields to change; `null` lifts a cap or the caller list."""

    name: Name = Field(UNSET)
    destination: Destination = Field(UNSET)
    priority: Priority = Field(UNSET)
    weight: Weight = Field(UNSET)
    paused: bool = Field(UNSET)
    timezone: TimeZone = Field(UNSET)
    hours: Hours = Field(UNSET)
    cap_trigger: CapTrigger = Field(UNSET)
    filters: Filters = Field(UNSET)
    caller_list_id: Id | None = Field(UNSET)
    ring_timeout: RingTimeout = Field(UNSET)
    dedupe_seconds: Seconds = Field(UNSET)
    group_ids: IdList = Field(UNSET, description="replaces its group memberships")
    passthrough: PassthroughIn | None = Field(UNSET, description="null removes it")
    bid: Money | None = Field(UNSET)


class TargetOut(CapsOut):
    """A target (buyer)."""

    id: int
    name: str
    destination: str
    priority: int
    weight: int
    paused: bool
    timezone: str
    hours: list[HoursBlockOut]
    cap_trigger: CapTrigger
    filters: list[TagFilterOut]
    caller_list_id: int | None
    ring_timeout: int
    dedupe_seconds: int
    group_ids: list[int]
    passthrough: dict[str, Any] | None
    bid: float | None


class TargetGroupCreate(CapsIn):
    """Caps shared by member targets; a call counts on every group it is in."""

    name: Name
    timezone: TimeZone = "UTC"
    target_ids: IdList = Field(default_factory=list, description="member targets")


class TargetGroupUpdate(CapsPatch):
    """Target group fields to change; `target_ids` replaces the members."""

    name: Name = Field(UNSET)
    timezone: TimeZone = Field(UNSET)
    target_ids: IdList = Field(UNSET, description="replaces the members")


class TargetGroupOut(CapsOut):
    """A target group."""

    id: int
    name: str
    timezone: str
    target_ids: list[int]


# --- publishers ----------------------------------------------------------------------------


class PublisherCreate(CapsIn):
    """A publisher (lead source) with optional caps and schedule."""

    publisher_id: PublisherId
    name: OptionalName = ""
    blocked: bool = Field(False, description="refuse every ping of this publisher")
    timezone: TimeZone = "UTC"
    hours: Hours = Field(default_factory=list)


class PublisherUpdate(CapsPatch):
    publisher_id: PublisherId = Field(UNSET)
    name: OptionalName = Field(UNSET)
    blocked: bool = Field(UNSET)
    timezone: TimeZone = Field(UNSET)
    hours: Hours = Field(UNSET)


class PublisherOut(CapsOut):
    """A publisher."""

    id: int
    publisher_id: str
    name: str
    blocked: bool
    timezone: str
    hours: list[HoursBlockOut]


# --- conversion criteria -------------------------------------------------------------------


class CriterionCreate(InModel):
    """When a call converts and what it pays; the first matching criterion by `position` applies."""

    campaign_id: CampaignId
    name: OptionalName = ""
    position: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        0, description="evaluation order, lowest first"
    )
    publisher_id: PublisherId | None = Field(None, description="only this publisher; null: all")
    payout_kind: PayoutKind = Field(PayoutKind.FIXED, description="fixed amount or revshare")
    payout: Money = Field(0.0, description="publisher payout; a percentage with revshare")
    revenue: Money = Field(0.0, description="what the buyer pays the owner")
    buffer_seconds: Seconds = Field(0, description="connected seconds before it converts")
    conditions: Filters = Field(default_factory=list)
    dedupe_seconds: Seconds = Field(0, description="no second payout for a repeat caller")

    @model_validator(mode="after")
    def _payout_fits_kind(self) -> CriterionCreate:
        check_payout(self.payout_kind, self.payout)
        return self


class CriterionUpdate(PatchModel):
    campaign_id: CampaignId = Field(UNSET)
    name: OptionalName = Field(UNSET)
    position: Annotated[int, Field(ge=0, le=1_000_000)] = Field(UNSET)
    publisher_id: PublisherId | None = Field(UNSET)
    payout_kind: PayoutKind = Field(UNSET)
    payout: Money = Field(UNSET)
    revenue: Money = Field(UNSET)
    buffer_seconds: Seconds = Field(UNSET)
    conditions: Filters = Field(UNSET)
    dedupe_seconds: Seconds = Field(UNSET)


class CriterionOut(OutModel):
    """A conversion criterion."""

    id: int
    campaign_id: int
    name: str
    position: int
    publisher_id: str | None
    payout_kind: PayoutKind
    payout: float
    revenue: float
    buffer_seconds: int
    conditions: list[TagFilterOut]
    dedupe_seconds: int


# --- RTB keys ------------------------------------------------------------------------------


class RtbKeyCreate(InModel):
    """An RTB key of a campaign; the key string is generated by the server."""

    campaign_id: CampaignId
    name: OptionalName = ""
    ttl_seconds: Ttl = 15
    timeout_seconds: PingTimeout = 5.0
    paused: bool = Field(False, description="refuse pings on this key")
    inbound_number: PhoneNumber | None = Field(
        None, description="always answer with this tracking number of the campaign"
    )
    allow_no_caller: bool = Field(False, description="accept pings without caller number")
    count_on_reserved: bool = Field(
        False, description="count a reservation against caps as soon as it is reserved"
    )
    strict_target: bool = Field(False, description="route the call only to the reserved target")
    shield_scope: ShieldScope = Field(
        ShieldScope.KEY, description="where repeat pings of a caller are shielded"
    )
    rate_per_second: RatePerSecond | None = Field(None, description="ping rate limit (null: none)")
    rate_burst: RateBurst = Field(10, description="pings allowed in a burst above the rate")


class RtbKeyUpdate(PatchModel):
    """RTB key fields to change (the key string itself never changes)."""

    campaign_id: CampaignId = Field(UNSET)
    name: OptionalName = Field(UNSET)
    ttl_seconds: Ttl = Field(UNSET)
    timeout_seconds: PingTimeout = Field(UNSET)
    paused: bool = Field(UNSET)
    inbound_number: PhoneNumber | None = Field(UNSET)
    allow_no_caller: bool = Field(UNSET)
    count_on_reserved: bool = Field(UNSET)
    strict_target: bool = Field(UNSET)
    shield_scope: ShieldScope = Field(UNSET)
    rate_per_second: RatePerSecond | None = Field(UNSET)
    rate_burst: RateBurst = Field(UNSET)


class RtbKeyOut(OutModel):
    """An RTB key."""

    key: str = Field(description="the key publishers ping with (uuid4)")
    campaign_id: int
    name: str
    ttl_seconds: int
    timeout_seconds: float
    paused: bool
    inbound_number: str | None
    allow_no_caller: bool
    count_on_reserved: bool
    strict_target: bool
    shield_scope: ShieldScope
    rate_per_second: float | None
    rate_burst: int


# --- caller lists --------------------------------------------------------------------------


class CallerListCreate(InModel):
    """Callers to refuse (block) or to accept exclusively (allow)."""

    name: Name
    kind: ListKind = Field(
        ListKind.BLOCK, description="block: refuse these callers; allow: only these"
    )
    numbers: NumberList = Field(default_factory=list)


class CallerListUpdate(PatchModel):
    """Caller list fields to change; `numbers` replaces the whole list."""

    name: Name = Field(UNSET)
    kind: ListKind = Field(UNSET)
    numbers: NumberList = Field(UNSET, description="replaces every number")


class CallerListSummary(OutModel):
    """A caller list without its numbers."""

    id: int
    name: str
    kind: ListKind
    number_count: int


class CallerListOut(OutModel):
    """A caller list with its numbers in E.164."""

    id: int
    name: str
    kind: ListKind
    numbers: list[str]
