"""A buyer's ping API tried once from its configuration, before any publisher depends on it:
the request as rendered with sample tokens, the answer, what the dialect reads from it and
how long it took. Through the same executor, deadline and address guard as real pings;
nothing is reserved, recorded or counted against caps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callbid.adapters.buyers.dialect import build_request, parser_for, ping_tokens
from callbid.adapters.buyers.templates import passthrough_from
from callbid.adapters.buyers.types import BuyerPing, BuyerRequest
from callbid.domain.buyers import BuyerReply, ReplyOutcome
from callbid.domain.errors import InvalidInput, Unavailable
from callbid.domain.model import PingRequest
from callbid.ids import new_id
from callbid.runtime import Runtime
from callbid.service.buyers import loop_time

#: How long a trial waits for the buyer, as an RTB key's default timeout.
TRIAL_TIMEOUT_SECONDS = 5.0
SAMPLE_TAGS = {"caller_zip": "10001", "caller_state": "NY", "caller_city": "New York"}
SAMPLE_CALLER = "+12125550123"


@dataclass(frozen=True, slots=True)
class TrialPing:
    request: BuyerRequest
    reply: BuyerReply

    @property
    def accepted(self) -> bool:
        return self.reply.outcome is ReplyOutcome.ACCEPTED

    def as_dict(self) -> dict[str, Any]:
        body = self.request.body.decode("utf-8", "replace") if self.request.body else None
        reply = self.reply
        return {
            "request": {
                "method": self.request.method,
                "url": self.request.url,
                "headers": dict(self.request.headers),
                "body": body,
            },
            "outcome": str(reply.outcome),
            "accepted": self.accepted,
            "bid": reply.bid,
            "number": reply.number,
            "seconds": reply.seconds,
            "detail": reply.detail,
            "http_status": reply.http_status,
            "latency_ms": reply.latency_ms,
            "body": reply.body,
        }


def sample_request(tags: Mapping[str, str] | None = None) -> PingRequest:
    """The ping a trial stands for: a New York caller and the sample tags (and `tags`)."""
    return PingRequest(
        key="test",
        publisher_id="test-publisher",
        caller_number=SAMPLE_CALLER,
        inbound_number=None,
        tags={**SAMPLE_TAGS, **(tags or {})},
    )


async def try_passthrough(
    runtime: Runtime, config: Mapping[str, Any], tags: Mapping[str, str] | None = None
) -> TrialPing:
    """Ping the buyer `config` (a stored passthrough: template and overrides) describes, once.

    InvalidInput when the configuration is not one, Unavailable when this worker has no
    executor; a refused address, a timeout or an unreadable answer is the reply's outcome."""
    try:
        passthrough = passthrough_from(config)
    except ValueError as refused:
        raise InvalidInput(str(refused)) from None
    if runtime.buyers is None:
        raise Unavailable("buyer pings are not running in this worker")
    request = build_request(passthrough, ping_tokens(sample_request(tags), uuid=new_id()))
    # A breaker of its own, forgotten after: a trial never opens or closes a real buyer's.
    breaker = f"trial-{new_id()}"
    ping = BuyerPing(None, breaker, request, parser_for(passthrough.mapping))
    try:
        (reply,) = await runtime.buyers.ping_all([ping], loop_time() + TRIAL_TIMEOUT_SECONDS)
    finally:
        runtime.buyers.forget_breaker(breaker)
    return TrialPing(request, reply)
