"""Whether an ended call converts, and who is paid what: pure, from the campaign's conversion
criteria, the call's facts and the caller's earlier conversions (groundwork for the calls
issue; nothing calls it yet).

Two cases. A call that claimed a reservation converts on the reservation's promise: the
criterion, payout, revenue and buffer it was answered with (so a publisher is paid what the
RTB answer said, even if the criteria changed since). Any other call is priced now: the first
criterion that pays this publisher for these tags and whose de-dupe window has passed for this
caller, converting once the connected seconds reach its buffer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from callbid.domain.decide import payout_for
from callbid.domain.filters import first_failing
from callbid.domain.model import ConversionCriterion


class NotConverted(StrEnum):
    """Why a call did not convert, for the call flow."""

    NOT_CONNECTED = "not connected"
    BELOW_BUFFER = "below buffer"
    DUPLICATE = "duplicate caller"
    NO_CRITERION = "no criterion pays this call"
    IN_DEDUPE_WINDOW = "repeat caller within the de-dupe window"


@dataclass(frozen=True, slots=True)
class Promise:
    """What a reservation's answer promised the publisher."""

    criterion_id: int | None
    payout: float
    revenue: float
    buffer_seconds: int


@dataclass(frozen=True, slots=True)
class EndedCall:
    """The facts of an ended call that conversion reads.

    `last_conversions` maps a criterion id to when (epoch seconds) this caller last converted
    under it; `bid` is what the buyer pays for the call when known (a live or static bid).
    `duplicate` is set when the call was flagged a duplicate caller while it was routed.
    """

    publisher_id: str
    tags: Mapping[str, str]
    connected_seconds: int
    ended_at: float
    promise: Promise | None = None
    bid: float | None = None
    duplicate: bool = False
    last_conversions: Mapping[int, float] | None = None


@dataclass(frozen=True, slots=True)
class Conversion:
    """The outcome: converted or why not; payout to the publisher, revenue from the buyer."""

    converted: bool
    criterion_id: int | None = None
    payout: float = 0.0
    revenue: float = 0.0
    reason: str | None = None


def convert(criteria: tuple[ConversionCriterion, ...], call: EndedCall) -> Conversion:
    """Whether `call` converts and at what payout and revenue (see the module docstring).

    Connected seconds reach a buffer when they are at least as many (a buffer of 0 converts
    every connected call). A call that never connected never converts."""
    if call.connected_seconds <= 0:
        return Conversion(False, reason=NotConverted.NOT_CONNECTED)
    if call.duplicate:
        return Conversion(False, reason=NotConverted.DUPLICATE)
    if call.promise is not None:
        return _keep_promise(call.promise, call.connected_seconds)
    return _price_now(criteria, call)


def _keep_promise(promise: Promise, connected: int) -> Conversion:
    if connected < promise.buffer_seconds:
        return _below(promise.criterion_id, connected, promise.buffer_seconds)
    return Conversion(True, promise.criterion_id, promise.payout, promise.revenue)


def _price_now(criteria: tuple[ConversionCriterion, ...], call: EndedCall) -> Conversion:
    paying = [c for c in criteria if _pays(c, call)]
    if not paying:
        return Conversion(False, reason=NotConverted.NO_CRITERION)
    fresh = [c for c in paying if not _in_window(c, call)]
    if not fresh:
        return Conversion(False, paying[0].id, reason=NotConverted.IN_DEDUPE_WINDOW)
    for criterion in fresh:
        if call.connected_seconds >= criterion.buffer_seconds:
            payout = _payout(criterion, call.bid)
            revenue = call.bid if call.bid is not None else criterion.revenue
            return Conversion(True, criterion.id, payout, revenue)
    first = fresh[0]
    return _below(first.id, call.connected_seconds, first.buffer_seconds)


def _pays(criterion: ConversionCriterion, call: EndedCall) -> bool:
    return (
        criterion.publisher_id is None or criterion.publisher_id == call.publisher_id
    ) and first_failing(criterion.rules, call.tags) is None


def _in_window(criterion: ConversionCriterion, call: EndedCall) -> bool:
    last = (call.last_conversions or {}).get(criterion.id)
    window = criterion.dedupe_seconds
    return window > 0 and last is not None and call.ended_at - last < window


def _payout(criterion: ConversionCriterion, bid: float | None) -> float:
    """Fixed, or the revshare percentage of the bid; a revshare with no bid pays nothing."""
    payout = payout_for(criterion, bid=bid)
    return 0.0 if payout is None else payout


def _below(criterion_id: int | None, connected: int, buffer: int) -> Conversion:
    reason = f"{NotConverted.BELOW_BUFFER}: connected {connected} s, buffer {buffer} s"
    return Conversion(False, criterion_id, reason=reason)
