"""The buyer fan-out: ask every buyer of a ping at once, answer for each by one deadline.

`BuyerExecutor.ping_all` sends each `BuyerPing` as its own task on one shared connection pool
(`http1.Http1Pool`), waits once until the deadline, cancels the late and reports them as
timeouts. It owns the pool, the outbound address guard (no private addresses unless
allow-listed), the bounded body read and the per-buyer circuit breakers; what a buyer's answer
means is its dialect's `parse`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from callbid.adapters.buyers.breaker import Breakers
from callbid.adapters.buyers.guard import AddressGuard, AddressRefused, GuardedResolver
from callbid.adapters.buyers.http1 import (
    Endpoint,
    Http1Pool,
    ResponseTooLarge,
    ServerDisconnected,
    endpoint_of,
)
from callbid.adapters.buyers.types import BuyerPing, BuyerRequest
from callbid.domain.buyers import BuyerReply, ReplyOutcome

#: How long a release (giving back a chained reservation we did not use) may take.
_RELEASE_SECONDS = 2.0
#: How long cancelled pings get to unwind before `ping_all` returns without them.
_DRAIN_SECONDS = 0.01
#: UTF-8 takes at most 4 bytes a character: enough bytes for the logged excerpt.
_EXCERPT_CHARS = 500
_EXCERPT_BYTES = 4 * _EXCERPT_CHARS
_SCHEMES = frozenset({"http", "https"})
_FAILURE_DETAILS: tuple[tuple[type[BaseException], str], ...] = (
    (ssl.SSLError, "tls failed"),
    (socket.gaierror, "dns failed"),
    (ConnectionRefusedError, "connect failed"),
    (ConnectionResetError, "connection reset"),
    (OSError, "connection failed"),
)


@dataclass(slots=True)
class _Attempt:
    """What is known of a ping in flight, for its reply if the deadline cuts it short."""

    ping: BuyerPing
    started: float
    status: int | None = None

    def saw_status(self, status: int) -> None:
        self.status = status


def describe_failure(exc: BaseException) -> str:
    """A short, stable detail for a failed request (`connect failed`, `server disconnected`,
    `bad response`); the exception's class name when it is not a known kind."""
    if isinstance(exc, ServerDisconnected):
        return str(exc)
    for kind, detail in _FAILURE_DETAILS:
        if isinstance(exc, kind):
            return detail
    return type(exc).__name__


def excerpt(body: bytes | None) -> str | None:
    """The start of a body for the decision log; None when nothing was read."""
    if not body:
        return None
    return body[:_EXCERPT_BYTES].decode("utf-8", errors="replace")[:_EXCERPT_CHARS]


def settles_ok(outcome: ReplyOutcome) -> bool | None:
    """What a reply means for the buyer's circuit: it answered (True), it failed (False) or
    it was never sent (None)."""
    if outcome is ReplyOutcome.SKIPPED:
        return None
    return outcome in (ReplyOutcome.ACCEPTED, ReplyOutcome.DECLINED)


def refusal(guard: AddressGuard, url: str) -> str | None:
    """Why `url` is not requested (`bad scheme`, `bad url`, `address not allowed`), or None."""
    scheme = url.partition(":")[0].lower()
    if scheme not in _SCHEMES:
        return "bad scheme"
    try:
        endpoint: Endpoint = endpoint_of(url)
    except ValueError:
        return "bad url"
    if not guard.allows_host(endpoint.host):
        return "address not allowed"
    return None


def answer_all(pings: Sequence[BuyerPing], outcome: ReplyOutcome, detail: str) -> list[BuyerReply]:
    """The same unsent answer for every ping."""
    return [BuyerReply(ping.target_id, outcome, detail=detail) for ping in pings]


class BuyerExecutor:
    """Sends buyer pings over one connection pool; `start` before use, `close` after."""

    def __init__(
        self,
        *,
        pool_size: int = 256,
        max_body_bytes: int = 65536,
        allow_networks: Sequence[str] = (),
        breakers: Breakers | None = None,
        clock: Callable[[], float] = time.monotonic,
        user_agent: str = "callbid",
    ) -> None:
        """`allow_networks`: CIDRs buyers may be reached at although not public (ValueError if
        one is malformed); `clock`: the breakers' monotonic time."""
        self.pool_size = pool_size
        self.max_body_bytes = max_body_bytes
        self.guard = AddressGuard(allow_networks)
        self.breakers = breakers if breakers is not None else Breakers()
        self.user_agent = user_agent
        self._clock = clock
        self._pool: Http1Pool | None = None
        self._stragglers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Create the connection pool (on the running loop)."""
        if self._pool is None:
            resolver = GuardedResolver(self.guard)
            self._pool = Http1Pool(resolver, limit=self.pool_size, user_agent=self.user_agent)

    async def close(self) -> None:
        """Cancel what is still unwinding and close every connection."""
        for task in self._stragglers:
            task.cancel()
        if self._stragglers:
            await asyncio.gather(*self._stragglers, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def release(self, requests: Sequence[BuyerRequest]) -> None:
        """Send `requests` in the background, each bounded in time, their answers ignored:
        giving back what a chained engine reserved is a courtesy (its TTL frees it anyway),
        never something a ping waits for."""
        if self._pool is None or not requests:
            return
        task = asyncio.create_task(self._release(self._pool, requests))
        self._keep({task})

    async def _release(self, pool: Http1Pool, requests: Sequence[BuyerRequest]) -> None:
        async def one(request: BuyerRequest) -> None:
            await pool.request(
                request.method, request.url, request.headers, request.body, max_body=4096
            )

        sends = (asyncio.wait_for(one(r), _RELEASE_SECONDS) for r in requests)
        await asyncio.gather(*sends, return_exceptions=True)

    def breaker_state(self, key: str) -> str:
        """One buyer's circuit state (`closed`, `open`, `half_open`)."""
        return self.breakers.state(key)

    def forget_breaker(self, key: str) -> None:
        """Drop a one-off buyer's circuit (a trial ping's)."""
        self.breakers.forget(key)

    def breaker_states(self) -> dict[str, str]:
        """Each buyer's circuit state (`closed`, `open`, `half_open`), for metrics."""
        return self.breakers.states()

    async def ping_all(self, pings: Sequence[BuyerPing], deadline: float) -> list[BuyerReply]:
        """Ping every buyer concurrently and return one reply per ping, in order.

        `deadline` is absolute on the running loop's clock. Returns by the deadline plus a few
        milliseconds and never raises (unless the caller is cancelled): a ping the deadline
        cut short is a TIMEOUT, one that could not be sent is SKIPPED (`circuit open`,
        `address not allowed`, `bad scheme`), a failure is an ERROR. When the deadline has
        passed already, nothing is sent.
        """
        started = asyncio.get_running_loop().time()
        if self._pool is None:
            return answer_all(pings, ReplyOutcome.ERROR, "executor closed")
        if deadline <= started:
            return answer_all(pings, ReplyOutcome.TIMEOUT, "deadline")
        replies: list[BuyerReply | None] = [None] * len(pings)
        tasks = self._launch(self._pool, pings, replies, started)
        if tasks:
            try:
                await self._collect(tasks, replies, deadline)
            except asyncio.CancelledError:
                self._abandon(tasks)
                raise
            self._settle(tasks, replies)
        return [reply for reply in replies if reply is not None]

    def _launch(
        self,
        pool: Http1Pool,
        pings: Sequence[BuyerPing],
        replies: list[BuyerReply | None],
        started: float,
    ) -> dict[asyncio.Task[BuyerReply], tuple[int, _Attempt]]:
        """Start a task per ping that may be sent; fill in SKIPPED replies for the others."""
        now = self._clock()
        tasks: dict[asyncio.Task[BuyerReply], tuple[int, _Attempt]] = {}
        for index, ping in enumerate(pings):
            refusal = self._screen(ping, now)
            if refusal is not None:
                replies[index] = BuyerReply(ping.target_id, ReplyOutcome.SKIPPED, detail=refusal)
                continue
            attempt = _Attempt(ping, started)
            tasks[asyncio.create_task(self._send(pool, attempt))] = (index, attempt)
        return tasks

    def _screen(self, ping: BuyerPing, now: float) -> str | None:
        """Why the ping is not sent, or None. Asks the breaker last, so that a probe is only
        taken for a ping that goes out."""
        refused = refusal(self.guard, ping.request.url)
        if refused is not None:
            return refused
        if not self.breakers.allow(ping.breaker_key, now):
            return "circuit open"
        return None

    async def _collect(
        self,
        tasks: dict[asyncio.Task[BuyerReply], tuple[int, _Attempt]],
        replies: list[BuyerReply | None],
        deadline: float,
    ) -> None:
        """Wait once until the deadline; cancel the late, give them a moment to unwind."""
        loop = asyncio.get_running_loop()
        _, pending = await asyncio.wait(tasks, timeout=deadline - loop.time())
        if pending:
            for task in pending:
                task.cancel()
            _, unwinding = await asyncio.wait(pending, timeout=_DRAIN_SECONDS)
            self._keep(unwinding)
        ended = loop.time()
        for task, (index, attempt) in tasks.items():
            replies[index] = self._reply_of(task, attempt, ended)

    def _reply_of(
        self, task: asyncio.Task[BuyerReply], attempt: _Attempt, ended: float
    ) -> BuyerReply:
        """A finished task's reply; a cancelled or unfinished one is a deadline TIMEOUT; an
        exception is an ERROR named after it."""
        if not task.done() or task.cancelled():
            return self._failed(attempt, ended, ReplyOutcome.TIMEOUT, "deadline")
        exc = task.exception()
        if exc is not None:
            return self._failed(attempt, ended, ReplyOutcome.ERROR, type(exc).__name__)
        return task.result()

    def _settle(
        self,
        tasks: dict[asyncio.Task[BuyerReply], tuple[int, _Attempt]],
        replies: list[BuyerReply | None],
    ) -> None:
        """Tell each sent ping's breaker how it went."""
        now = self._clock()
        for index, attempt in tasks.values():
            reply = replies[index]
            ok = settles_ok(reply.outcome) if reply is not None else None
            key = attempt.ping.breaker_key
            if ok is None:
                self.breakers.release(key)
            else:
                self.breakers.record(key, ok, now)

    def _abandon(self, tasks: dict[asyncio.Task[BuyerReply], tuple[int, _Attempt]]) -> None:
        """The caller was cancelled: cancel every ping, free the probes they held."""
        for task, (_, attempt) in tasks.items():
            task.cancel()
            self.breakers.release(attempt.ping.breaker_key)
        self._keep(set(tasks))

    def _keep(self, tasks: set[asyncio.Task[Any]]) -> None:
        """Hold cancelled tasks until they finish unwinding (and retrieve their outcome)."""
        for task in tasks:
            if task.done():
                self._drop_straggler(task)
            else:
                self._stragglers.add(task)
                task.add_done_callback(self._drop_straggler)

    def _drop_straggler(self, task: asyncio.Task[Any]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled():
            task.exception()

    async def _send(self, pool: Http1Pool, attempt: _Attempt) -> BuyerReply:
        """Send one ping and parse its answer; request failures become replies."""
        loop = asyncio.get_running_loop()
        attempt.started = loop.time()
        request = attempt.ping.request
        try:
            response = await pool.request(
                request.method,
                request.url,
                request.headers,
                request.body,
                max_body=self.max_body_bytes,
                on_status=attempt.saw_status,
            )
        except ResponseTooLarge as exc:
            detail = f"response over {self.max_body_bytes} bytes"
            return self._failed(attempt, loop.time(), ReplyOutcome.ERROR, detail, exc.head)
        except AddressRefused:
            return self._failed(attempt, loop.time(), ReplyOutcome.SKIPPED, "address not allowed")
        except (OSError, ValueError) as exc:
            return self._failed(attempt, loop.time(), ReplyOutcome.ERROR, describe_failure(exc))
        return self._parsed(attempt, response.body, response.content_type, loop.time())

    @staticmethod
    def _parsed(
        attempt: _Attempt, body: bytes, content_type: str | None, ended: float
    ) -> BuyerReply:
        status = attempt.status if attempt.status is not None else 0
        parsed = attempt.ping.parse(status, body, content_type)
        return BuyerReply(
            attempt.ping.target_id,
            parsed.outcome,
            latency_ms=round((ended - attempt.started) * 1000, 1),
            http_status=attempt.status,
            bid=parsed.bid,
            number=parsed.number,
            seconds=parsed.seconds,
            detail=parsed.detail,
            body=excerpt(body),
            reference=parsed.reference,
        )

    @staticmethod
    def _failed(
        attempt: _Attempt,
        ended: float,
        outcome: ReplyOutcome,
        detail: str,
        body: bytes | None = None,
    ) -> BuyerReply:
        return BuyerReply(
            attempt.ping.target_id,
            outcome,
            latency_ms=round((ended - attempt.started) * 1000, 1),
            http_status=attempt.status,
            detail=detail,
            body=excerpt(body),
        )
