"""Sends pixels (webhooks out) over the buyers' pooled HTTP/1.1 client, behind the same
outbound address guard (no private addresses unless allow-listed), one deadline a request.

`PixelSender.send` never raises (unless cancelled): whatever happens becomes a `SendResult`.
A pixel's answer body means nothing to us, so only its first bytes are read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from callbid.adapters.buyers.executor import describe_failure, refusal
from callbid.adapters.buyers.guard import AddressGuard, AddressRefused, GuardedResolver
from callbid.adapters.buyers.http1 import Http1Pool, ResponseTooLarge

#: Bytes of a receiver's answer read before it is dropped (its status is what counts).
MAX_ANSWER_BYTES = 4096


@dataclass(frozen=True, slots=True)
class SendResult:
    """One attempt: the receiver's HTTP status (None when none came) or what went wrong.

    `permanent`: the request can never be sent as it is (a URL the guard refuses), so trying
    again is pointless.
    """

    http_status: int | None
    error: str | None
    latency_ms: float
    permanent: bool = False

    @property
    def delivered(self) -> bool:
        return self.error is None and self.http_status is not None and 200 <= self.http_status < 300


class PixelSender:
    """Pixel requests on a pool of its own; `start` before use, `close` after."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_networks: Sequence[str] = (),
        pool_size: int = 64,
        user_agent: str = "callbid-pixel",
    ) -> None:
        """`timeout`: seconds an attempt may take, connecting included; `allow_networks`:
        CIDRs receivers may be on although not public (ValueError if one is malformed)."""
        self.timeout = timeout
        self.guard = AddressGuard(allow_networks)
        self._pool_size = pool_size
        self._user_agent = user_agent
        self._pool: Http1Pool | None = None

    async def start(self) -> None:
        if self._pool is None:
            resolver = GuardedResolver(self.guard)
            self._pool = Http1Pool(resolver, limit=self._pool_size, user_agent=self._user_agent)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def send(
        self, method: str, url: str, headers: tuple[tuple[str, str], ...], body: str | None
    ) -> SendResult:
        """Send one pixel; its result, timed. 2xx is delivered; any other status, a timeout, a
        connection failure is an error worth retrying; a refused address is permanent."""
        loop = asyncio.get_running_loop()
        started = loop.time()

        def result(status: int | None, error: str | None, permanent: bool = False) -> SendResult:
            return SendResult(status, error, round((loop.time() - started) * 1000, 1), permanent)

        refused = refusal(self.guard, url)
        if refused is not None:
            return result(None, refused, permanent=True)
        if self._pool is None:
            return result(None, "sender closed")
        seen: list[int] = []
        payload = None if body is None else body.encode("utf-8", "replace")
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._pool.request(
                    method, url, headers, payload, max_body=MAX_ANSWER_BYTES, on_status=seen.append
                )
        except TimeoutError:
            return result(seen[-1] if seen else None, "timeout")
        except ResponseTooLarge:
            return result(seen[-1] if seen else None, None)
        except AddressRefused:
            return result(None, "address not allowed", permanent=True)
        except (OSError, ValueError) as exc:
            return result(None, describe_failure(exc))
        if not 200 <= response.status < 300:
            return result(response.status, f"http {response.status}")
        return result(response.status, None)
