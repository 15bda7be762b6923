"""Why a ping was not reserved, for machines: a small stable table in the style of OpenRTB's
no-bid reasons, derived from the decision log.

Pure. A request refused as a whole has its own code (`suppressed`, `duplicate_caller`, …).
Otherwise every target was refused on its own, and the answer carries the reason of the target
that got furthest in the pipeline (`STAGES`): a publisher learns how close the ping came, never
which buyer, how many, or whose cap. Codes are part of the public API: add, never rename.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from callbid.domain.buyers import BuyerReply, ReplyOutcome
from callbid.domain.reserve import ReserveStatus


class ReasonCode(StrEnum):
    SUPPRESSED = "suppressed"
    PUBLISHER_CLOSED = "publisher_closed"
    NO_TRACKING_NUMBER = "no_tracking_number"
    POOL_EXHAUSTED = "pool_exhausted"
    DUPLICATE_CALLER = "duplicate_caller"
    PUBLISHER_CAPPED = "publisher_capped"
    PAYOUT_UNDETERMINABLE = "payout_undeterminable"
    NO_BUYER_OPEN = "no_buyer_open"
    FILTERED = "filtered"
    CAPPED = "capped"
    BUYERS_FAILED = "buyers_failed"
    BUYERS_TIMED_OUT = "buyers_timed_out"
    BUYERS_DECLINED = "buyers_declined"


#: The code of a hot-state answer that refuses the request as a whole.
OF_STATUS = {
    ReserveStatus.DUPLICATE: ReasonCode.DUPLICATE_CALLER,
    ReserveStatus.PUBLISHER_CAPPED: ReasonCode.PUBLISHER_CAPPED,
    ReserveStatus.UNPRICED: ReasonCode.PAYOUT_UNDETERMINABLE,
    ReserveStatus.NO_POOL_NUMBER: ReasonCode.POOL_EXHAUSTED,
}

#: A refused target's decision log outcome (exact, or a prefix ending in `:`) and its code, in
#: pipeline order: hours and pause, filters and caller lists, the target's own de-dupe, its
#: caps, then its buyer's answer (a failure, a timeout, a refusal).
STAGES: tuple[tuple[str, ReasonCode], ...] = (
    ("paused", ReasonCode.NO_BUYER_OPEN),
    ("closed", ReasonCode.NO_BUYER_OPEN),
    ("filtered:", ReasonCode.FILTERED),
    ("duplicate", ReasonCode.DUPLICATE_CALLER),
    ("capped:", ReasonCode.CAPPED),
    ("ping_skipped", ReasonCode.BUYERS_FAILED),
    ("ping_error", ReasonCode.BUYERS_FAILED),
    ("ping_timeout", ReasonCode.BUYERS_TIMED_OUT),
    ("ping_declined", ReasonCode.BUYERS_DECLINED),
)
#: A target whose buyer accepted but whose cap filled before the reservation got furthest.
CAPPED_AFTER_ACCEPTING = len(STAGES)


def target_stage(outcome: str, ping: BuyerReply | None = None) -> int | None:
    """How far a refused target got (an index into `STAGES`, or `CAPPED_AFTER_ACCEPTING`);
    None for an outcome that refuses nothing by itself (`selected`, `not_reached`, …)."""
    for index, (pattern, _) in enumerate(STAGES):
        if outcome == pattern or (pattern.endswith(":") and outcome.startswith(pattern)):
            accepted = ping is not None and ping.outcome is ReplyOutcome.ACCEPTED
            return CAPPED_AFTER_ACCEPTING if accepted and pattern == "capped:" else index
    return None


def code_of_stage(stage: int) -> ReasonCode:
    return ReasonCode.CAPPED if stage == CAPPED_AFTER_ACCEPTING else STAGES[stage][1]


def reason_of_targets(rows: Iterable[tuple[str, BuyerReply | None]]) -> ReasonCode:
    """The code of the target that got furthest, from (outcome, buyer's answer) pairs;
    `no_buyer_open` when no target was refused (a campaign without targets)."""
    stages = [target_stage(outcome, ping) for outcome, ping in rows]
    reached = [stage for stage in stages if stage is not None]
    return code_of_stage(max(reached)) if reached else ReasonCode.NO_BUYER_OPEN
