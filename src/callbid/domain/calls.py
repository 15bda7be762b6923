"""Calls as a carrier reports them (a call arriving, its progress) and where to send them.

Carrier-neutral plain data. Each carrier's dialect (`adapters/telephony/`) parses its webhooks
into these and renders a `RouteAnswer` in its own markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call arriving at one of our numbers.

    `dialled` is the number called (E.164), `caller` the caller's number (E.164), None when it
    is withheld or not a phone number. Carriers do not say when the call arrived: whoever
    receives the webhook stamps `received_at`.
    """

    call_sid: str
    caller: str | None
    dialled: str
    received_at: datetime | None = None


class CallStatus(StrEnum):
    """A call's (or one dialled leg's) state, named as Twilio names it."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class CallProgress:
    """A status callback, or the outcome of dialling a leg (a `<Dial action>` callback).

    `status` and `duration_seconds` are the caller's call; `dial_status` and
    `dial_duration_seconds` the dialled leg's, None outside a dial outcome. Durations are None
    when the carrier did not report one (it does once a call or leg has ended).
    """

    call_sid: str
    status: CallStatus
    duration_seconds: int | None
    dial_status: CallStatus | None
    dial_duration_seconds: int | None


@dataclass(frozen=True, slots=True)
class Leg:
    """Where to try sending a call: an E.164 number or a `sip:` URI, rung for `ring_timeout`
    seconds, on behalf of the target `target_id`."""

    destination: str
    ring_timeout: int
    target_id: int


@dataclass(frozen=True, slots=True)
class RouteAnswer:
    """How to route a call now.

    The first leg is dialled now; the others are for when it does not answer (the carrier's
    next webhook asks again, and is answered with what is left). With no leg left, `fallback`
    is said to the caller, when there is one, and the call is hung up.
    """

    legs: tuple[Leg, ...]
    fallback: str | None
