"""The buyer fan-out against real local HTTP servers: one deadline for every buyer, each
misbehaviour turned into its reply, the address guard, circuit breakers and kept-alive
connections.

Buyers are an aiohttp.web app on 127.0.0.1 and raw asyncio servers for what aiohttp.web will
not do (accept and stay silent, send headers and no body). The dialect is a JSON parser double:
`{"accepted": true, "bid": 12.5}`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from callbid.adapters.buyers.breaker import BreakerPolicy, Breakers
from callbid.adapters.buyers.executor import BuyerExecutor
from callbid.adapters.buyers.types import BuyerPing, BuyerRequest, Parser
from callbid.domain.buyers import BuyerReply, ParsedReply, ReplyOutcome

LOCAL = ["127.0.0.0/8"]
DEADLINE = 0.3
HUGE = 4 * 1024 * 1024
LIMIT = 65536
TOO_LARGE = f"response over {LIMIT} bytes"


def parse_json(status: int, body: bytes, content_type: str | None) -> ParsedReply:
    """The tests' dialect: 204 declines, other non-200s are errors, JSON says the rest."""
    if status == 204:
        return ParsedReply(ReplyOutcome.DECLINED, detail="no content")
    if status != 200:
        return ParsedReply(ReplyOutcome.ERROR, detail=f"http {status}")
    try:
        data = json.loads(body)
    except ValueError:
        return ParsedReply(ReplyOutcome.ERROR, detail="malformed JSON")
    if not data.get("accepted"):
        return ParsedReply(ReplyOutcome.DECLINED, detail=data.get("reason"))
    return ParsedReply(ReplyOutcome.ACCEPTED, bid=float(data["bid"]), number=data.get("number"))


def ping(
    url: str,
    target_id: int | None = 1,
    *,
    key: str | None = None,
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes | None = None,
    parse: Parser = parse_json,
) -> BuyerPing:
    return BuyerPing(target_id, key or url, BuyerRequest(method, url, headers, body), parse)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Buyers:
    """The aiohttp.web buyers: what each path answers, and what reached them."""

    base: str
    hits: Counter[str] = field(default_factory=Counter)
    peers: set[Any] = field(default_factory=set)
    seen: list[dict[str, Any]] = field(default_factory=list)
    healthy: bool = False

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def buyer_app(buyers: Buyers) -> web.Application:
    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        buyers.hits[request.path] += 1
        assert request.transport is not None
        buyers.peers.add(request.transport.get_extra_info("peername"))
        response: web.StreamResponse = await handler(request)
        return response

    async def bid(request: web.Request) -> web.Response:
        return web.json_response({"accepted": True, "bid": float(request.match_info["amount"])})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"accepted": True, "bid": 99})

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        with suppress(ConnectionError):
            for _ in range(HUGE // 65536):
                await response.write(b"x" * 65536)
        return response

    async def bomb(request: web.Request) -> web.Response:
        body = gzip.compress(b"0" * HUGE)
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def echo(request: web.Request) -> web.Response:
        buyers.seen.append(
            {
                "method": request.method,
                "headers": dict(request.headers),
                "body": await request.read(),
            }
        )
        response = web.json_response({"accepted": True, "bid": 1})
        response.set_cookie("session", "abc")
        return response

    async def flaky(request: web.Request) -> web.Response:
        if buyers.healthy:
            return web.json_response({"accepted": False, "reason": "no capacity"})
        return web.Response(status=500)

    def fixed(response: Callable[[], web.StreamResponse]) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return response()

        return handler

    app = web.Application(middlewares=[count])
    app.router.add_get("/bid/{amount}", bid)
    app.router.add_get("/slow", slow)
    app.router.add_get("/error", fixed(lambda: web.Response(status=500)))
    app.router.add_get("/garbage", fixed(lambda: web.Response(text="<html>oops</html>")))
    app.router.add_get("/huge", fixed(lambda: web.Response(body=b"x" * HUGE)))
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/empty", fixed(lambda: web.Response(status=204)))
    app.router.add_get(
        "/redirect", fixed(lambda: web.Response(status=302, headers={"Location": "/bid/99"}))
    )
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/flaky", flaky)
    return app


@pytest.fixture
async def buyers() -> AsyncIterator[Buyers]:
    state = Buyers(base="")
    runner = web.AppRunner(
        buyer_app(state), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await runner.cleanup()


@dataclass
class RawServer:
    """A TCP server that reads a request, sends `head` (maybe nothing) and then stays quiet
    until the client goes away."""

    head: bytes
    url: str = ""
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.head)
            await reader.read()
        writer.close()


@asynccontextmanager
async def raw_server(head: bytes) -> AsyncIterator[RawServer]:
    raw = RawServer(head)
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        yield raw
    finally:
        server.close()
        for writer in raw.writers:
            writer.close()
        await server.wait_closed()
        await asyncio.sleep(0)


@asynccontextmanager
async def running(**options: Any) -> AsyncIterator[BuyerExecutor]:
    executor = BuyerExecutor(max_body_bytes=LIMIT, **options)
    await executor.start()
    try:
        yield executor
    finally:
        await executor.close()


@pytest.fixture
async def executor() -> AsyncIterator[BuyerExecutor]:
    async with running(allow_networks=LOCAL) as executor:
        yield executor


async def ping_within(
    executor: BuyerExecutor, pings: list[BuyerPing], seconds: float = DEADLINE
) -> list[BuyerReply]:
    """`ping_all` with a deadline `seconds` away; asserts it returned in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    replies = await executor.ping_all(pings, deadline)
    assert loop.time() <= deadline + 0.05
    assert len(replies) == len(pings)
    assert [reply.target_id for reply in replies] == [p.target_id for p in pings]
    return replies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def summary(reply: BuyerReply) -> tuple[ReplyOutcome, str | None, int | None]:
    return reply.outcome, reply.detail, reply.http_status


async def test_every_buyer_answered_for_by_the_deadline(
    executor: BuyerExecutor, buyers: Buyers
) -> None:
    silent_head = b""
    hanging_head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 99\r\n\r\n"
    )
    async with raw_server(silent_head) as silent, raw_server(hanging_head) as hanging:
        paths = ["/slow", "/error", "/garbage", "/huge", "/chunked", "/empty", "/redirect"]
        pings = [ping(buyers.url(path), n) for n, path in enumerate(paths)]
        pings += [ping(hanging.url, 7), ping(silent.url, 8)]
        pings += [ping(buyers.url("/bid/12.5"), 9), ping(buyers.url("/bid/20"), 10)]
        replies = await ping_within(executor, pings)
    assert [summary(reply) for reply in replies] == [
        (ReplyOutcome.TIMEOUT, "deadline", None),
        (ReplyOutcome.ERROR, "http 500", 500),
        (ReplyOutcome.ERROR, "malformed JSON", 200),
        (ReplyOutcome.ERROR, TOO_LARGE, 200),
        (ReplyOutcome.ERROR, TOO_LARGE, 200),
        (ReplyOutcome.DECLINED, "no content", 204),
        (ReplyOutcome.ERROR, "http 302", 302),
        (ReplyOutcome.TIMEOUT, "deadline", 200),
        (ReplyOutcome.TIMEOUT, "deadline", None),
        (ReplyOutcome.ACCEPTED, None, 200),
        (ReplyOutcome.ACCEPTED, None, 200),
    ]
    assert [replies[9].bid, replies[10].bid] == [12.5, 20.0]
    assert replies[2].body == "<html>oops</html>"
    assert replies[3].body is None
    assert replies[4].body == "x" * 500
    assert replies[5].body is None
    assert replies[9].body == '{"accepted": true, "bid": 12.5}'
    assert all(r.latency_ms is not None and 0 <= r.latency_ms <= 350 for r in replies)
    assert (replies[0].latency_ms or 0) >= 290
    assert buyers.hits["/bid/99"] == 0, "redirects are not followed"
    assert executor.breaker_states() == dict.fromkeys((p.breaker_key for p in pings), "closed")


async def test_decompression_is_bounded_too(executor: BuyerExecutor, buyers: Buyers) -> None:
    [reply] = await ping_within(executor, [ping(buyers.url("/bomb"))])
    assert summary(reply) == (ReplyOutcome.ERROR, TOO_LARGE, 200)


async def test_request_is_sent_as_built_without_cookies(
    executor: BuyerExecutor, buyers: Buyers
) -> None:
    sent = ping(
        buyers.url("/echo?caller=%2B15555550123"),
        method="POST",
        headers=(("Content-Type", "application/json"), ("X-Api-Key", "k")),
        body=b'{"caller": "+15555550123"}',
    )
    for _ in range(2):
        [reply] = await ping_within(executor, [sent])
        assert reply.outcome is ReplyOutcome.ACCEPTED
    first, second = buyers.seen
    assert first["method"] == "POST"
    assert first["body"] == b'{"caller": "+15555550123"}'
    assert first["headers"]["X-Api-Key"] == "k"
    assert first["headers"]["User-Agent"] == "callbid"
    assert "Cookie" not in second["headers"]


async def test_sequential_pings_reuse_one_connection(
    executor: BuyerExecutor, buyers: Buyers
) -> None:
    for amount in range(5):
        [reply] = await ping_within(executor, [ping(buyers.url(f"/bid/{amount}"))])
        assert reply.bid == amount
    assert sum(buyers.hits.values()) == 5
    assert len(buyers.peers) == 1


async def test_oversized_answer_does_not_poison_the_pool(
    executor: BuyerExecutor, buyers: Buyers
) -> None:
    pings = [ping(buyers.url("/chunked")), ping(buyers.url("/bid/3"))]
    for _ in range(3):
        replies = await ping_within(executor, pings)
        assert [r.outcome for r in replies] == [ReplyOutcome.ERROR, ReplyOutcome.ACCEPTED]


async def test_deadline_already_passed_sends_nothing(
    executor: BuyerExecutor, buyers: Buyers
) -> None:
    loop = asyncio.get_running_loop()
    pings = [ping(buyers.url("/bid/1"), 1), ping(buyers.url("/bid/2"), 2)]
    replies = await executor.ping_all(pings, loop.time() - 0.001)
    assert [summary(r) for r in replies] == [(ReplyOutcome.TIMEOUT, "deadline", None)] * 2
    await asyncio.sleep(0.05)
    assert sum(buyers.hits.values()) == 0
    assert executor.breaker_states() == {}


async def test_no_pings_no_replies(executor: BuyerExecutor) -> None:
    assert await ping_within(executor, []) == []


async def test_unreachable_and_unsendable_buyers(executor: BuyerExecutor) -> None:
    def broken(status: int, body: bytes, content_type: str | None) -> ParsedReply:
        raise ZeroDivisionError

    pings = [
        ping(f"http://127.0.0.1:{free_port()}/", 1),
        ping("ftp://127.0.0.1/bid", 2),
        ping("http:///nohost", 3),
    ]
    async with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") as raw:
        pings.append(ping(raw.url, 4, parse=broken))
        pings.append(ping(raw.url, 5, key="raw"))
        replies = await ping_within(executor, pings)
    assert [summary(r) for r in replies] == [
        (ReplyOutcome.ERROR, "connect failed", None),
        (ReplyOutcome.SKIPPED, "bad scheme", None),
        (ReplyOutcome.SKIPPED, "bad url", None),
        (ReplyOutcome.ERROR, "ZeroDivisionError", 200),
        (ReplyOutcome.DECLINED, None, 200),
    ]


async def test_guard_refuses_loopback_without_allow_list(buyers: Buyers) -> None:
    port = buyers.base.rsplit(":", 1)[1]
    pings = [
        ping(buyers.url("/bid/1"), 1),
        ping(f"http://localhost:{port}/bid/2", 2),
        ping(f"http://[::1]:{port}/bid/3", 3),
        ping(f"http://2130706433:{port}/bid/4", 4),
    ]
    async with running() as executor:
        replies = await ping_within(executor, pings)
        assert executor.breaker_states() == {}
    assert [summary(r) for r in replies] == [
        (ReplyOutcome.SKIPPED, "address not allowed", None)
    ] * 4
    assert sum(buyers.hits.values()) == 0


async def test_allow_list_admits_localhost_through_the_resolver(buyers: Buyers) -> None:
    port = buyers.base.rsplit(":", 1)[1]
    async with running(allow_networks=LOCAL) as executor:
        [reply] = await ping_within(executor, [ping(f"http://localhost:{port}/bid/7")])
    assert (reply.outcome, reply.bid) == (ReplyOutcome.ACCEPTED, 7.0)


async def test_breaker_opens_then_probes_after_cooldown(buyers: Buyers) -> None:
    clock = Clock()
    breakers = Breakers(BreakerPolicy(failures=3, cooldown_seconds=10, max_cooldown_seconds=60))
    flaky = ping(buyers.url("/flaky"), key="flaky")
    async with running(allow_networks=LOCAL, breakers=breakers, clock=clock) as executor:

        async def outcome() -> tuple[ReplyOutcome, str | None]:
            [reply] = await ping_within(executor, [flaky])
            return reply.outcome, reply.detail

        for _ in range(3):
            assert await outcome() == (ReplyOutcome.ERROR, "http 500")
        assert executor.breaker_state("flaky") == "open"
        clock.now += 9.9
        assert await outcome() == (ReplyOutcome.SKIPPED, "circuit open")
        assert buyers.hits["/flaky"] == 3
        clock.now += 0.1
        assert await outcome() == (ReplyOutcome.ERROR, "http 500")
        assert buyers.hits["/flaky"] == 4
        assert (executor.breaker_state("flaky"), breakers.cooldown("flaky")) == ("open", 20)
        buyers.healthy = True
        clock.now += 20
        assert await outcome() == (ReplyOutcome.DECLINED, "no capacity")
        assert executor.breaker_states() == {"flaky": "closed"}


async def test_one_probe_while_half_open(buyers: Buyers) -> None:
    clock = Clock()
    breakers = Breakers(BreakerPolicy(failures=1, cooldown_seconds=10))
    async with running(allow_networks=LOCAL, breakers=breakers, clock=clock) as executor:
        [first] = await ping_within(executor, [ping(buyers.url("/error"), key="b")])
        assert first.outcome is ReplyOutcome.ERROR
        clock.now += 10
        replies = await ping_within(
            executor, [ping(buyers.url("/bid/5"), n, key="b") for n in range(3)]
        )
    assert [r.outcome for r in replies] == [
        ReplyOutcome.ACCEPTED,
        ReplyOutcome.SKIPPED,
        ReplyOutcome.SKIPPED,
    ]
    assert breakers.state("b") == "closed"


async def test_deadline_timeouts_count_against_the_breaker(buyers: Buyers) -> None:
    breakers = Breakers(BreakerPolicy(failures=1))
    async with running(allow_networks=LOCAL, breakers=breakers) as executor:
        [reply] = await ping_within(executor, [ping(buyers.url("/slow"), key="slow")], 0.1)
        assert reply.outcome is ReplyOutcome.TIMEOUT
        assert executor.breaker_states() == {"slow": "open"}


async def test_cancelled_caller_cancels_the_pings(buyers: Buyers) -> None:
    async with (
        running(allow_networks=LOCAL) as executor,
        raw_server(b"") as silent,
    ):
        loop = asyncio.get_running_loop()
        pings = [ping(silent.url), ping(buyers.url("/slow"), 2)]
        call = asyncio.create_task(executor.ping_all(pings, loop.time() + 5))
        await asyncio.sleep(0.1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    assert silent.connections == 1


async def test_closed_executor_answers_errors() -> None:
    executor = BuyerExecutor()
    loop = asyncio.get_running_loop()
    [reply] = await executor.ping_all([ping("http://buyer.example/")], loop.time() + 1)
    assert summary(reply) == (ReplyOutcome.ERROR, "executor closed", None)
