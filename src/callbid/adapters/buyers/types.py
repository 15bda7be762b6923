"""What crosses between the buyer dialects and the fan-out executor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callbid.domain.buyers import ParsedReply

#: A dialect's parser bound to its mapping: (HTTP status, body, content type) -> reply.
Parser = Callable[[int, bytes, str | None], ParsedReply]


@dataclass(frozen=True, slots=True)
class BuyerRequest:
    """A buyer ping ready to send: every template already substituted."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


@dataclass(frozen=True, slots=True)
class BuyerPing:
    """One buyer to ask during a ping. `breaker_key` names the buyer for its circuit breaker
    (one breaker per buyer and worker process); `target_id` None is the campaign's own
    passthrough."""

    target_id: int | None
    breaker_key: str
    request: BuyerRequest
    parse: Parser
