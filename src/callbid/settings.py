"""Typed settings from the environment (`CALLBID_*`) or keyword arguments, validated at once."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callbid.hotstate.cluster import CLUSTER_SCHEME, TLS_CLUSTER_SCHEME, parse_cluster_url
from callbid.hotstate.sentinel import SENTINEL_SCHEME, parse_sentinel_url

#: The URL schemes `CALLBID_REDIS_URL` takes.
REDIS_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME, CLUSTER_SCHEME, TLS_CLUSTER_SCHEME)


class Settings(BaseSettings):
    """Every knob callbid has. Validation reports every problem in one message."""

    model_config = SettingsConfigDict(env_prefix="CALLBID_", extra="forbid")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./callbid.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "redis://host:port/db (or rediss://, unix://) for shared hot state, "
            "redis+sentinel://host:port,…/<master>/db for a Sentinel-managed primary, or "
            "redis+cluster://host:port[,host:port...] for a Redis Cluster"
        ),
    )
    redis_timeout_seconds: float = Field(
        default=1.0, gt=0, le=30, description="give up on a Redis call after this long (503)"
    )
    redis_pool_size: int = Field(
        default=32,
        ge=2,
        le=10_000,
        description="Redis connections per worker process (one is the configuration bus's)",
    )
    redis_replicas_ack: int = Field(
        default=0,
        ge=0,
        le=100,
        description="replicas that must confirm each hot-state write (Redis WAIT) before it "
        "is answered; 503 otherwise",
    )
    database_timeout_seconds: float = Field(
        default=5.0, gt=0, le=300, description="give up connecting to PostgreSQL after this long"
    )
    store: Literal["auto", "memory", "redis"] = Field(
        default="auto", description="hot-state store; auto picks redis when redis_url is set"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=256)
    retention_hours: float = Field(default=24.0, gt=0, description="how long RTB records are kept")
    purge_interval_seconds: float = Field(default=300.0, gt=0)
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    seed_demo: bool = Field(
        default=True, description="create the demo company when the database is empty"
    )
    max_body_bytes: int = Field(default=65536, ge=1024)
    max_tags: int = Field(default=100, ge=1)
    max_tag_bytes: int = Field(default=2048, ge=16)
    write_batch_max: int = Field(default=512, ge=1)
    buyer_pool_size: int = Field(
        default=256, ge=1, le=100_000, description="open connections to buyers per worker"
    )
    buyer_max_body_bytes: int = Field(
        default=65536, ge=1024, le=16 * 1024 * 1024, description="a longer buyer answer is no bid"
    )
    buyer_allow_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs buyers may be on although private, loopback or link-local "
        '(JSON list, e.g. ["10.0.0.0/8"]); every other such address is refused',
    )
    breaker_failures: int = Field(
        default=5, ge=1, le=1000, description="consecutive failures that open a buyer's breaker"
    )
    breaker_cooldown_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="first wait before an open breaker's probe"
    )
    public_url: str | None = Field(
        default=None,
        description="the service's public base URL (https://calls.example.com) as the carrier "
        "calls it, for webhook signatures and TwiML callback URLs behind a proxy; by default "
        "the URL each request arrived on",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="the key that signs console session cookies; by default one is generated "
        "and kept in the database, shared by every worker",
    )
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 90, description="how long a console sign-in lasts"
    )
    call_max_seconds: int = Field(
        default=4 * 3600,
        ge=60,
        le=7 * 86400,
        description="a call whose end is never reported is closed after this long, freeing "
        "its target's slot",
    )
    pixel_poll_seconds: float = Field(
        default=0.5, gt=0, le=60, description="how often due pixels (webhooks out) are looked for"
    )
    pixel_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="a pixel receiver slower than this is retried later"
    )
    pixel_max_attempts: int = Field(
        default=10, ge=1, le=100, description="attempts at a pixel before it is marked failed"
    )
    pixel_backoff_base_seconds: float = Field(
        default=5.0, gt=0, le=86_400, description="wait after a pixel's first failed attempt"
    )
    pixel_backoff_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 86_400,
        description="longest wait between a pixel's attempts (the wait doubles up to it)",
    )
    random_seed: int | None = Field(
        default=None, description="seed the routing random source (tests)"
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", description="the least severe log records written"
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="json: one JSON object per line (events with their fields); text: for a "
        "person at a terminal",
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("redis_url")
    @classmethod
    def _known_redis_url(cls, value: str | None) -> str | None:
        if value is not None and (problem := redis_url_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _check_together(self) -> Settings:
        problems = []
        for cidr in self.buyer_allow_networks:
            try:
                ip_network(cidr, strict=False)
            except ValueError:
                problems.append(f"buyer_allow_networks: {cidr!r} is not a network (CIDR)")
        if self.workers > 1 and (self.redis_url is None or self.store == "memory"):
            problems.append("several workers share hot state: set CALLBID_REDIS_URL")
        if self.workers > 1 and self.is_sqlite:
            problems.append(
                "several workers share one database: set CALLBID_DATABASE_URL to PostgreSQL"
            )
        if self.pixel_backoff_max_seconds < self.pixel_backoff_base_seconds:
            problems.append("pixel_backoff_max_seconds must be at least pixel_backoff_base_seconds")
        if self.store == "redis" and self.redis_url is None:
            problems.append("store=redis needs CALLBID_REDIS_URL")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_redis(self) -> bool:
        return self.store == "redis" or (self.store == "auto" and self.redis_url is not None)

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        return Path(path) if path and path != ":memory:" else None


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, or None."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in REDIS_SCHEMES:
        schemes = ", ".join(f"{name}://" for name in REDIS_SCHEMES)
        given = f"scheme {scheme!r}" if sep else "no scheme"
        return f"{given}: a Redis URL starts with one of {schemes}"
    parse = {
        SENTINEL_SCHEME: parse_sentinel_url,
        CLUSTER_SCHEME: parse_cluster_url,
        TLS_CLUSTER_SCHEME: parse_cluster_url,
    }.get(scheme)
    if parse is not None:
        try:
            parse(url)
        except ValueError as exc:
            return str(exc)
    return None
