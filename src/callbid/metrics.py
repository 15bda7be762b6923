"""Prometheus metrics: ping latency, buyers' outcomes and latency, timeouts, breaker states.

One `Metrics` per app, in its own registry. Under `callbid serve --workers N` the supervisor
sets `PROMETHEUS_MULTIPROC_DIR`, every worker writes its values there, and whichever worker
answers `/metrics` reports the sum over all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from callbid.domain.buyers import BuyerReply, ReplyOutcome

PING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BREAKER_CODES = {"closed": 0, "half_open": 1, "open": 2}


def buyer_label(target_id: int | None, campaign_id: int) -> str:
    """A buyer's name in metrics and for its circuit breaker: the target id, or
    `campaign-<id>` for a campaign's own passthrough."""
    return f"campaign-{campaign_id}" if target_id is None else str(target_id)


class Metrics:
    """The service's metrics, observed by the use cases and rendered by `/metrics`."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.pings = Histogram(
            "callbid_ping_seconds",
            "Time from a ping's arrival in the handler to its answer, by answer status",
            ["status"],
            buckets=PING_BUCKETS,
            registry=registry,
        )
        self.buyer_pings = Counter(
            "callbid_buyer_pings",
            "Buyer passthrough pings by buyer and outcome",
            ["buyer", "outcome"],
            registry=registry,
        )
        self.buyer_latency = Histogram(
            "callbid_buyer_ping_seconds",
            "Buyers' answer latency (pings that got an answer)",
            ["buyer"],
            buckets=PING_BUCKETS,
            registry=registry,
        )
        self.buyer_timeouts = Counter(
            "callbid_buyer_timeouts",
            "Buyer pings cancelled at the ping's deadline",
            ["buyer"],
            registry=registry,
        )
        self.breakers = Gauge(
            "callbid_buyer_breaker_state",
            "Circuit breaker per buyer: 0 closed, 1 half open, 2 open",
            ["buyer"],
            registry=registry,
            multiprocess_mode="livemax",
        )

        # Label lookups take a lock each: children are looked up once per label value.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Counter | Gauge | Histogram, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_ping(self, status: str, seconds: float) -> None:
        self._child(self.pings, status).observe(seconds)

    def observe_buyers(
        self, replies: Iterable[tuple[str, BuyerReply]], breaker_state: Callable[[str], str]
    ) -> None:
        """Count each buyer's outcome and latency (replies by buyer label), and its breaker's
        state (by buyer label)."""
        for label, reply in replies:
            self._child(self.buyer_pings, label, reply.outcome).inc()
            if reply.outcome is ReplyOutcome.TIMEOUT:
                self._child(self.buyer_timeouts, label).inc()
            elif reply.latency_ms is not None:
                self._child(self.buyer_latency, label).observe(reply.latency_ms / 1000.0)
            self._child(self.breakers, label).set(BREAKER_CODES.get(breaker_state(label), 0))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type; all workers' values when shared."""
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
