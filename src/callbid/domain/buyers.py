"""Buyers' own ping APIs (passthrough webhooks): their configuration and what they answered.

Plain data only. Building a buyer's HTTP request and parsing its answer are the dialect's pure
functions (`adapters/buyers/dialect.py`); sending it is the executor's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NumberMode(StrEnum):
    """What a buyer's dynamic number is for.

    `transfer`: the publisher is given it as `inbound_number` and transfers straight to the
    buyer. `dial`: the publisher gets callbid's tracking number and callbid dials the buyer's
    number when the call arrives (chaining to another RTB engine works this way).
    """

    TRANSFER = "transfer"
    DIAL = "dial"


@dataclass(frozen=True, slots=True)
class ResponseMapping:
    """Where the answer's fields are. Each expression is a JMESPath over the JSON body
    (`bidTerms[0].callMinDuration`, a leading `$.` allowed) or `re:<regex>` over the raw body
    (first group, else the whole match).

    Accepted: when `accepted` is set, its value is truthy, or is one of `accepted_values`
    (compared as lower-case strings) when those are given; without `accepted`, a buyer accepts
    when a positive bid or a number is found. The bid is multiplied by `bid_multiplier` and
    `seconds_offset` is added to the seconds.
    """

    accepted: str | None = None
    accepted_values: tuple[str, ...] = ()
    bid: str | None = None
    number: str | None = None
    seconds: str | None = None
    reason: str | None = None
    #: The buyer's own id of what it reserved for us (a chained engine's reservation uuid).
    reference: str | None = None
    bid_multiplier: float = 1.0
    seconds_offset: int = 0


@dataclass(frozen=True, slots=True)
class Passthrough:
    """A buyer's ping API: request templates with `[token]` substitution, and its mapping."""

    url: str
    mapping: ResponseMapping
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    content_type: str = "application/json"
    number_mode: NumberMode = NumberMode.TRANSFER
    dialect: str = "custom"


class ReplyOutcome(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """What a buyer's answer says, once parsed by its dialect (no timing yet)."""

    outcome: ReplyOutcome
    bid: float | None = None
    number: str | None = None
    seconds: int | None = None
    detail: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class BuyerReply:
    """One buyer's ping as it happened: outcome, timing, HTTP status, parsed fields and a
    truncated body for the decision log. `target_id` None is the campaign's own passthrough.

    `detail` says why a ping was declined, failed or skipped (`http 500`, `malformed JSON`,
    `circuit open`, `address not allowed`, the buyer's reject reason).
    """

    target_id: int | None
    outcome: ReplyOutcome
    latency_ms: float | None = None
    http_status: int | None = None
    bid: float | None = None
    number: str | None = None
    seconds: int | None = None
    detail: str | None = None
    body: str | None = None
    reference: str | None = None
