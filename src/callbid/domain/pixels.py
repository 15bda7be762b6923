"""Pixels (webhooks out): which fire on an event, the request each sends, and when a failed
delivery is tried again. Pure, no I/O: the outbox and the sending live in `service/pixels.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from callbid.domain.filters import first_failing
from callbid.domain.model import TagRule
from callbid.domain.tokens import render_parts

DEFAULT_CONTENT_TYPE = "application/json"


class PixelEvent(StrEnum):
    """What happened: a reservation was made or expired unused; its call started, was
    answered by the buyer, converted."""

    RESERVED = "reserved"
    CALL_STARTED = "call_started"
    ANSWERED = "answered"
    CONVERTED = "converted"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A campaign's pixel: a request template sent when `event` happens and every condition
    passes on the event's tokens (tags and standard tokens alike, as target filters read them).
    """

    id: int
    event: PixelEvent
    url: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    content_type: str = DEFAULT_CONTENT_TYPE
    conditions: tuple[TagRule, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderedPixel:
    """A pixel ready for the outbox: every template substituted."""

    webhook_id: int
    event: PixelEvent
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: `base_seconds` after the first failure, doubling up to
    `max_seconds`; no attempt after the `max_attempts`-th."""

    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    max_attempts: int = 10


DEFAULT_RETRY = RetryPolicy()


def render(webhook: Webhook, tokens: Mapping[str, str]) -> RenderedPixel | None:
    """The pixel's request for an event with `tokens` (names lower case), or None when one of
    its conditions fails. Never raises: unknown tokens render empty, every value is escaped
    for where it lands (URL-encoded in the URL, JSON- or form-escaped in the body, stripped of
    CR/LF and other controls in headers)."""
    if first_failing(webhook.conditions, tokens) is not None:
        return None
    parts = render_parts(webhook.url, webhook.headers, webhook.body, webhook.content_type, tokens)
    return RenderedPixel(
        webhook.id, webhook.event, webhook.method, parts.url, parts.headers, parts.body
    )


def next_attempt(
    attempts: int, now: datetime, policy: RetryPolicy = DEFAULT_RETRY
) -> datetime | None:
    """When to try again after `attempts` failed attempts (1 after the first failure), or None
    when that was the last one allowed."""
    if attempts >= policy.max_attempts:
        return None
    return now + timedelta(seconds=backoff_seconds(attempts, policy))


def backoff_seconds(attempts: int, policy: RetryPolicy) -> float:
    """`base * 2^(attempts-1)`, capped at `max_seconds`."""
    exponent = min(max(attempts - 1, 0), 62)  # 2**62 seconds is past any cap already
    return min(policy.base_seconds * 2.0**exponent, policy.max_seconds)
