"""SQLAlchemy 2 models of everything callbid keeps durably (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Company(Base):
    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The carrier account's auth token that signs its voice webhooks (Twilio's auth token).
    carrier_auth_token: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    routing_strategy: Mapped[str] = mapped_column(String(20), default="priority")
    blocked_list_ids: Mapped[list[Any]] = mapped_column(default=list)
    passthrough: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    targets: Mapped[list[Target]] = relationship(secondary="campaign_targets", viewonly=True)


class NumberPool(Base):
    __tablename__ = "number_pools"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))


class TrackingNumber(Base):
    __tablename__ = "tracking_numbers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(40), unique=True)
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("number_pools.id", ondelete="SET NULL"))


class CallerList(Base):
    __tablename__ = "caller_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default="block")
    numbers: Mapped[list[Any]] = mapped_column(default=list)


class CapsMixin:
    concurrency_cap: Mapped[int | None] = mapped_column(Integer)
    hourly_cap: Mapped[int | None] = mapped_column(Integer)
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    monthly_cap: Mapped[int | None] = mapped_column(Integer)
    lifetime_cap: Mapped[int | None] = mapped_column(Integer)


class Target(CapsMixin, Base):
    __tablename__ = "targets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(300))
    priority: Mapped[int] = mapped_column(Integer, default=1)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    hours: Mapped[list[Any]] = mapped_column(default=list)
    cap_trigger: Mapped[str] = mapped_column(String(20), default="connect")
    filters: Mapped[list[Any]] = mapped_column(default=list)
    caller_list_id: Mapped[int | None] = mapped_column(
        ForeignKey("caller_lists.id", ondelete="SET NULL")
    )
    ring_timeout: Mapped[int] = mapped_column(Integer, default=30)
    dedupe_seconds: Mapped[int] = mapped_column(Integer, default=0)
    #: The buyer's ping API as the admin API validated it (`adapters/buyers/templates.py`).
    passthrough: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    bid: Mapped[float | None] = mapped_column(Float)


class CampaignTarget(Base):
    """A target in a campaign's routing pool."""

    __tablename__ = "campaign_targets"
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    target_id: Mapped[int] = mapped_column(
        ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True
    )


class TargetGroup(CapsMixin, Base):
    __tablename__ = "target_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")


class TargetGroupMember(Base):
    __tablename__ = "target_group_members"
    group_id: Mapped[int] = mapped_column(
        ForeignKey("target_groups.id", ondelete="CASCADE"), primary_key=True
    )
    target_id: Mapped[int] = mapped_column(
        ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True
    )


class Publisher(CapsMixin, Base):
    __tablename__ = "publishers"
    __table_args__ = (UniqueConstraint("company_id", "publisher_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    publisher_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200), default="")
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    hours: Mapped[list[Any]] = mapped_column(default=list)


class ConversionCriterion(Base):
    __tablename__ = "conversion_criteria"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    publisher_id: Mapped[str | None] = mapped_column(String(100))
    payout_kind: Mapped[str] = mapped_column(String(20), default="fixed")
    payout: Mapped[float] = mapped_column(Float, default=0.0)
    revenue: Mapped[float] = mapped_column(Float, default=0.0)
    buffer_seconds: Mapped[int] = mapped_column(Integer, default=0)
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    dedupe_seconds: Mapped[int] = mapped_column(Integer, default=0)


class RtbKey(Base):
    __tablename__ = "rtb_keys"
    key: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    ttl_seconds: Mapped[int] = mapped_column(Integer, default=15)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=5.0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    inbound_number: Mapped[str | None] = mapped_column(String(40))
    allow_no_caller: Mapped[bool] = mapped_column(Boolean, default=False)
    count_on_reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    strict_target: Mapped[bool] = mapped_column(Boolean, default=False)
    shield_scope: Mapped[str] = mapped_column(String(10), default="key")
    rate_per_second: Mapped[float | None] = mapped_column(Float)
    rate_burst: Mapped[int] = mapped_column(Integer, default=10)


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (
        Index("ix_reservations_live", "status", "expires_at"),
        Index("ix_reservations_created", "created_at"),
        # The console's RTB log: newest first per company, paged by (created_at, uuid).
        Index("ix_reservations_company_created", "company_id", "created_at", "uuid"),
        Index(
            "ix_reservations_inbound",
            "campaign_id",
            "inbound_number",
            "caller_number",
            "created_at",
        ),
    )
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(36))
    api: Mapped[str] = mapped_column(String(10), default="rtb")
    publisher_id: Mapped[str] = mapped_column(String(100))
    caller_number: Mapped[str | None] = mapped_column(String(40))
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20))
    info: Mapped[str | None] = mapped_column(String(200))
    owner_info: Mapped[str | None] = mapped_column(String(200))
    #: The answer's `reason_code` (`domain.reasons.ReasonCode`) when it was not reserved.
    reason_code: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[int | None] = mapped_column(Integer)
    criterion_id: Mapped[int | None] = mapped_column(Integer)
    matched_criteria: Mapped[list[Any]] = mapped_column(default=list)
    payout: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[int | None] = mapped_column(Integer)
    revenue: Mapped[float | None] = mapped_column(Float)
    inbound_number: Mapped[str | None] = mapped_column(String(40))
    pool_number: Mapped[str | None] = mapped_column(String(40))
    #: The number to dial for this reservation's call when its buyer gave one (chaining).
    destination: Mapped[str | None] = mapped_column(String(300))
    holds: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_keys: Mapped[list[Any]] = mapped_column(default=list)
    shield_key: Mapped[str | None] = mapped_column(String(200))
    #: One entry per target considered: position, target_id, target_name, outcome (and, for
    #: pinged buyers, latency, HTTP status, bid, truncated body). Kept in the row so that a
    #: ping costs one insert.
    decision_log: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    confirmed_at: Mapped[datetime | None] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column()
    wiped_at: Mapped[datetime | None] = mapped_column()


class ReportRollup(Base):
    """Reservation counts of one UTC hour (`hour`: its start) per campaign, publisher and
    target (0: none), which reports read instead of rows rolled up or purged."""

    __tablename__ = "report_rollups"
    company_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    publisher_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pings: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
    wiped: Mapped[int] = mapped_column(Integer, default=0)


class CallerSeen(Base):
    """When a caller was last reserved on a campaign, for de-dupe windows beyond a restart."""

    __tablename__ = "caller_seen"
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_number: Mapped[str] = mapped_column(String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column()
    keep_until: Mapped[datetime] = mapped_column(index=True)


class Call(Base):
    """A call that reached one of the campaigns' tracking numbers, and what became of it.

    `flow` is the call flow: one entry per event (`at`, `event`, `detail`), appended as the
    carrier reports them. `legs` is the routing plan still to try, in order (`target_id`,
    `destination`, `ring_timeout`). `subject_keys` and `counters` are what the live call holds
    and counts in the hot state, so that a restart can put them back.
    """

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("company_id", "call_sid"),
        Index("ix_calls_hold_until", "hold_until"),
        Index("ix_calls_campaign_started", "campaign_id", "started_at"),
        Index("ix_calls_company_started", "company_id", "started_at", "uuid"),
        Index("ix_calls_caller", "campaign_id", "caller_number", "converted_at"),
    )
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[int] = mapped_column(Integer)
    call_sid: Mapped[str] = mapped_column(String(128))
    dialect: Mapped[str] = mapped_column(String(20))
    caller_number: Mapped[str | None] = mapped_column(String(40))
    dialled_number: Mapped[str] = mapped_column(String(40))
    publisher_id: Mapped[str | None] = mapped_column(String(100))
    reservation_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    #: How the call met the reservations: claimed, expired, other_caller, already_claimed,
    #: wiped, none.
    match: Mapped[str] = mapped_column(String(20))
    strict: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: routing, connected, ended
    status: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int | None] = mapped_column(Integer)
    destination: Mapped[str | None] = mapped_column(String(300))
    legs: Mapped[list[Any]] = mapped_column(default=list)
    holds: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_keys: Mapped[list[Any]] = mapped_column(default=list)
    counters: Mapped[list[Any]] = mapped_column(default=list)
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the sweeper closes the call if its end never comes; None once it ended.
    hold_until: Mapped[datetime | None] = mapped_column()
    #: What the reservation promised (criterion_id, payout, revenue, buffer_seconds), if any.
    promise: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    bid: Mapped[float | None] = mapped_column(Float)
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column()
    connected_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    connected_seconds: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    converted: Mapped[bool] = mapped_column(Boolean, default=False)
    converted_at: Mapped[datetime | None] = mapped_column()
    criterion_id: Mapped[int | None] = mapped_column(Integer)
    payout: Mapped[float | None] = mapped_column(Float)
    revenue: Mapped[float | None] = mapped_column(Float)
    conversion_info: Mapped[str | None] = mapped_column(String(200))
    flow: Mapped[list[Any]] = mapped_column(default=list)


class CapCount(Base):
    """How many calls counted against a cap period (`t7:d20261123`, `g3:life`), for an
    in-process hot state to start from after a restart."""

    __tablename__ = "cap_counts"
    company_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter: Mapped[str] = mapped_column(String(100), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Webhook(Base):
    """A pixel: an HTTP request sent when an event happens on a campaign.

    `url`, `headers` values and `body` are templates with `[token]` substitution; `conditions`
    are tag rules (as target filters) that must all pass for the pixel to fire.
    """

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    #: reserved, call_started, answered, converted, expired
    event: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10), default="POST")
    url: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(Base):
    """One rendered pixel in the outbox, delivered at least once.

    status: pending (due at `next_attempt_at`), delivered, failed (gave up after the last
    retry). `subject` is the reservation's or the call's uuid.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[int] = mapped_column(Integer, index=True)
    webhook_id: Mapped[int | None] = mapped_column(Integer, index=True)
    event: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(String(36), index=True)
    method: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column()
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()


class WebhookAttempt(Base):
    """One attempt at delivering a pixel: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column()
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float | None] = mapped_column(Float)


class User(Base):
    """A person who signs in to the console for one company; `role` is `admin` or `viewer`."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    #: Stored lower-cased; unique across companies, so that a sign-in names one user.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default="admin")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()


class ConsoleSession(Base):
    """A signed-in browser: the cookie carries the session id, signed; only its hash is kept."""

    __tablename__ = "console_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginFailure(Base):
    """Wrong passwords in a row for one email or one client address, to slow guessing down."""

    __tablename__ = "login_failures"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column()


class Meta(Base):
    """Small operator facts (e.g. the demo's credentials), one text value per key."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
