"""Asking buyers during a ping: probe capacity, ping the buyers that have some under the key's
deadline, and turn their answers into the order the hot state executes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from callbid.adapters.buyers.dialect import (
    build_request,
    parser_for,
    ping_tokens,
    release_request,
)
from callbid.adapters.buyers.types import BuyerPing, BuyerRequest
from callbid.domain.bidding import apply_bids, buyers_to_ping
from callbid.domain.buyers import BuyerReply, ReplyOutcome
from callbid.domain.decide import PingPlan
from callbid.domain.model import Campaign, PingRequest, RtbKey
from callbid.domain.reserve import ReserveResult, ReserveStatus
from callbid.hotstate.protocol import HotState
from callbid.metrics import Metrics, buyer_label


class BuyerPinger(Protocol):
    """The fan-out executor as the use case sees it (`adapters.buyers.executor`)."""

    async def ping_all(self, pings: Sequence[BuyerPing], deadline: float) -> list[BuyerReply]:
        """One reply per ping, in order, by `deadline` (event-loop time); never raises."""
        ...

    def forget_breaker(self, key: str) -> None:
        """Drop a one-off buyer's circuit (a trial ping's)."""
        ...

    def breaker_state(self, key: str) -> str:
        """`closed`, `half_open` or `open`."""
        ...

    def release(self, requests: Sequence[BuyerRequest]) -> None:
        """Send `requests` in the background; nothing waits for them."""
        ...


class OverheadMeter:
    """callbid's own time after the buyers answered (reserve, record, answer): a high
    quantile of recent pings, so that a ping's buyer deadline leaves room for it.

    Recomputed every `every` observations over the last `window`; never below `floor`.
    """

    def __init__(
        self, *, floor: float = 0.005, window: int = 512, every: int = 64, quantile: float = 0.99
    ) -> None:
        self._floor, self._window, self._every, self._quantile = floor, window, every, quantile
        self._samples: list[float] = []
        self._next = 0
        self._seen = 0
        self._estimate = floor

    def estimate(self) -> float:
        return self._estimate

    def observe(self, seconds: float) -> None:
        if len(self._samples) < self._window:
            self._samples.append(seconds)
        else:
            self._samples[self._next] = seconds
            self._next = (self._next + 1) % self._window
        self._seen += 1
        if self._seen % self._every == 0 or self._seen < self._every:
            ordered = sorted(self._samples)
            at = min(len(ordered) - 1, int(len(ordered) * self._quantile))
            self._estimate = max(self._floor, ordered[at])


def buyer_deadline(started: float, key: RtbKey, overhead: float) -> float:
    """When buyers must have answered: the key's timeout from the ping's start, less callbid's
    own measured overhead (at most half the timeout)."""
    return started + key.timeout_seconds - min(overhead, key.timeout_seconds / 2)


async def ask_buyers(
    store: HotState,
    pinger: BuyerPinger,
    metrics: Metrics,
    campaign: Campaign,
    request: PingRequest,
    plan: PingPlan,
    *,
    deadline: float,
) -> tuple[PingPlan, ReserveResult | None]:
    """The plan once the buyers with capacity answered, and the probe's answer when it already
    decides the ping (rate limited, shielded, duplicate, nothing with capacity); None when the
    new plan's order is to be sent."""
    assert plan.order is not None
    probe = await store.reserve(replace(plan.order, probe=True))
    if probe.status is not ReserveStatus.AVAILABLE:
        return plan, probe
    asked = buyers_to_ping(campaign, plan, (target_id for target_id, _ in probe.blocked))
    tokens = ping_tokens(request, uuid=plan.order.uuid)
    labels = [buyer_label(target_id, campaign.id) for target_id, _ in asked]
    pings = [
        BuyerPing(target_id, label, build_request(p, tokens), parser_for(p.mapping))
        for (target_id, p), label in zip(asked, labels, strict=True)
    ]
    replies = await pinger.ping_all(pings, deadline) if pings else []
    metrics.observe_buyers(zip(labels, replies, strict=True), pinger.breaker_state)
    plan = apply_bids(campaign, plan, probe.blocked, replies)
    assert plan.order is not None
    if not plan.order.candidates:
        return plan, ReserveResult(ReserveStatus.NO_TARGET, last_seen=probe.last_seen)
    return plan, None


def release_unused(
    pinger: BuyerPinger,
    campaign: Campaign,
    request: PingRequest,
    plan: PingPlan,
    winner: int | None,
) -> None:
    """Give back what chained engines reserved for this ping when it went elsewhere (or
    nowhere): their reservations would otherwise hold a slot and shield the caller there until
    their TTL."""
    unused = [
        reply
        for reply in plan.replies
        if reply.outcome is ReplyOutcome.ACCEPTED
        and reply.reference is not None
        and (reply.target_id is None or reply.target_id != winner)
    ]
    if not unused:
        return
    assert plan.order is not None
    tokens = ping_tokens(request, uuid=plan.order.uuid)
    releases = []
    for reply in unused:
        assert reply.reference is not None
        target = campaign.target(reply.target_id) if reply.target_id is not None else None
        passthrough = target.passthrough if target is not None else campaign.passthrough
        if passthrough is None or (reply.target_id is None and winner is not None):
            continue  # a campaign gate's reservation stands for whichever target won
        url = build_request(passthrough, tokens).url
        release = release_request(passthrough, url, reply.reference)
        if release is not None:
            releases.append(release)
    pinger.release(releases)


def loop_time() -> float:
    return asyncio.get_running_loop().time()
