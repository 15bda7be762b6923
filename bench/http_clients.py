"""Fan-outs per second from one Python process: callbid's own buyer client against aiohttp and
httpx, to local mock buyers.

    python bench/http_clients.py --buyers 5 --concurrency 64 --seconds 5 [--delay-ms 0]

A fan-out is what callbid's handler does during one RTB ping: one POST with a small JSON body
to each of `--buyers` buyers at once, then wait for every answer. `--concurrency` fan-outs are
in flight at all times (one coroutine each, fanning out again as soon as its fan-out is done),
on one event loop (uvloop when importable; `--loop asyncio` for asyncio's own), through:

- aiohttp: one `ClientSession` on a pooled `TCPConnector` (limit concurrency × buyers, no
  per-host limit, keep-alive, no cookie jar, as callbid's executor builds it);
- httpx: one `AsyncClient` with `httpx.Limits(max_connections=C*B,
  max_keepalive_connections=C*B)`;
- callbid: `callbid.adapters.buyers.http1.Http1Pool`, the client callbid's executor uses
  (limit C × B, loopback allowed by its address guard).

Each client gets a fresh loop and a warm-up that is not counted: `--warmup` seconds (1), and
longer if need be (60 s at most) until every coroutine has finished a fan-out, so that every
connection is open; then `--seconds` are measured. Answers are read whole but not parsed. The buyers
are another process (multiprocessing, spawn; SIGTERM when the bench dies, and they stop when
the bench closes their pipe), serving every buyer on a port of its own with a raw
`asyncio.Protocol` HTTP/1.1 keep-alive server that answers `{"accepted":true,"bid":12.5}`
`--delay-ms` after each request (at once for 0) and understands pipelined requests cut
anywhere. With two cores or more the bench runs on the first one it may use and the buyers on
the second (`--no-pin`: the scheduler decides).

Output: a table per client (fan-outs/s and requests/s answered 200 in the measured seconds,
p50/p99 fan-out latency in ms, errors = requests that raised or answered other than 200, CPU
µs per request = this process's CPU time over the requests sent, warm-up seconds), the
errors by kind if any, then as the LAST line one JSON object: `aiohttp_per_s`, `httpx_per_s`,
`callbid_per_s` (fan-outs/s), `aiohttp_errors`, `httpx_errors`, `callbid_errors`, `ratio`
(aiohttp_per_s / httpx_per_s) and `callbid_ratio` (callbid_per_s / aiohttp_per_s).
Exits 1 when a client had errors or no fan-out at all, or when the buyers do not start; 130
when interrupted. Fan-outs/s is only as steady as the window is long against the fan-outs'
latency: when that is seconds, as for httpx at 64 × 5 here, give a longer `--seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import multiprocessing
import os
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

import aiohttp
import httpx

from callbid.adapters.buyers.guard import AddressGuard, GuardedResolver
from callbid.adapters.buyers.http1 import Http1Pool
from rtb import BenchError, _die_with_parent, positive, run_bench

try:
    import uvloop
except ImportError:  # the bench then runs on asyncio's own loop
    uvloop = None  # type: ignore[assignment]

LOCALHOST = "127.0.0.1"
CLIENTS = ("aiohttp", "httpx", "callbid")
BUYERS_START_S = 15.0
BUYERS_STOP_S = 5.0
REQUEST_TIMEOUT_S = 10.0
MAX_WARMUP_S = 60.0
BODY = b'{"caller_number":"+12125550100","caller_zip":"10001","publisher_id":"bench"}'
HEADERS = {"Content-Type": "application/json"}
ANSWER_BODY = b'{"accepted":true,"bid":12.5}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(ANSWER_BODY),
    ANSWER_BODY,
)
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)", re.I)
CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.I)
MAX_HEAD_BYTES = 16_384

Send = Callable[[str], Awaitable[int]]


# ---------------------------------------------------------------- mock buyers


class BadRequest(Exception):
    """The bytes are not HTTP/1.1 requests this mock understands."""


class RequestFraming:
    """Counts the complete HTTP/1.1 requests of a byte stream fed in pieces of any size: a
    head up to a blank line, then `Content-Length` bytes of body (none without the header).
    Whole requests in one piece, the usual case, are counted without copying."""

    def __init__(self) -> None:
        self._pending = b""  # the start of a request not complete yet

    def feed(self, data: bytes) -> int:
        """Requests completed by `data`; BadRequest for chunked bodies or an endless head."""
        if self._pending:
            data = self._pending + data
        complete, start = 0, 0
        while (end := data.find(b"\r\n\r\n", start)) >= 0:
            if CHUNKED.search(data, start, end):
                raise BadRequest("chunked request bodies are not supported")
            length = CONTENT_LENGTH.search(data, start, end)
            stop = end + 4 + (int(length.group(1)) if length else 0)
            if stop > len(data):
                break
            complete, start = complete + 1, stop
        self._pending = data[start:]
        if len(self._pending) > MAX_HEAD_BYTES and self._pending.find(b"\r\n\r\n") < 0:
            raise BadRequest("request head too long")
        return complete


class BuyerProtocol(asyncio.Protocol):
    """One keep-alive connection to a mock buyer: every request gets ANSWER, in order, `delay_s`
    after the read that completed it (one write for all the requests of that read)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.framing = RequestFraming()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            complete = self.framing.feed(data)
        except BadRequest:
            self.transport.write(BAD_REQUEST)
            self.transport.close()
            return
        if not complete:
            return
        if self.delay_s > 0:
            asyncio.get_running_loop().call_later(self.delay_s, self._answer, complete)
        else:
            self.transport.write(ANSWER * complete)

    def _answer(self, count: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ANSWER * count)


async def serve_buyers(buyers: int, delay_s: float, pipe: Connection) -> None:
    """Listen on `buyers` ports of 127.0.0.1, send their numbers down `pipe`, and serve until
    the other end of `pipe` sends anything or is closed."""
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(
            functools.partial(BuyerProtocol, delay_s), LOCALHOST, 0, backlog=4096
        )
        for _ in range(buyers)
    ]
    pipe.send([int(server.sockets[0].getsockname()[1]) for server in servers])
    stopped = asyncio.Event()
    loop.add_reader(pipe.fileno(), stopped.set)
    await stopped.wait()
    loop.remove_reader(pipe.fileno())
    for server in servers:
        server.close()


def run_buyers(
    buyers: int, delay_ms: float, core: int | None, parent: int, pipe: Connection
) -> None:
    """The buyers process's main (on uvloop when importable), pinned to `core` if given."""
    _die_with_parent()
    if os.getppid() != parent:  # the bench died before prctl
        return
    if core is not None:
        os.sched_setaffinity(0, {core})
    run_on(
        "uvloop" if uvloop is not None else "asyncio", serve_buyers(buyers, delay_ms / 1000, pipe)
    )


@contextlib.contextmanager
def running_buyers(buyers: int, delay_ms: float, core: int | None) -> Iterator[list[str]]:
    """The buyers' URLs while their process runs; stopped on exit. BenchError if they do not
    start."""
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    proc = spawn.Process(
        target=run_buyers,
        args=(buyers, delay_ms, core, os.getpid(), theirs),
        name="mock-buyers",
        daemon=True,
    )
    proc.start()
    theirs.close()
    try:
        try:
            if not ours.poll(BUYERS_START_S):
                raise BenchError(f"the buyers did not start in {BUYERS_START_S:.0f} s")
            ports: list[int] = ours.recv()
        except EOFError:
            proc.join(BUYERS_STOP_S)
            raise BenchError(f"the buyers exited ({proc.exitcode}) before listening") from None
        yield [f"http://{LOCALHOST}:{port}/bid" for port in ports]
    finally:
        ours.close()  # the buyers see the end of the pipe and stop
        proc.join(BUYERS_STOP_S)
        if proc.is_alive():
            proc.kill()
            proc.join()


# ---------------------------------------------------------------- clients


@contextlib.asynccontextmanager
async def aiohttp_client(connections: int) -> AsyncIterator[Send]:
    """`send(url)`: POST BODY with aiohttp, read the answer whole, return its status."""
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0, keepalive_timeout=30)
    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    ) as session:

        async def send(url: str) -> int:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
                return response.status

        yield send


@contextlib.asynccontextmanager
async def httpx_client(connections: int) -> AsyncIterator[Send]:
    """`send(url)`: POST BODY with httpx (which reads the answer whole), return its status."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S) as client:

        async def send(url: str) -> int:
            response = await client.post(url, content=BODY, headers=HEADERS)
            return response.status_code

        yield send


@contextlib.asynccontextmanager
async def callbid_client(connections: int) -> AsyncIterator[Send]:
    """`send(url)`: POST BODY with callbid's buyer client, return the status."""
    resolver = GuardedResolver(AddressGuard(["127.0.0.0/8"]))
    pool = Http1Pool(resolver, limit=connections)
    headers = tuple(HEADERS.items())
    try:

        async def send(url: str) -> int:
            response = await pool.request("POST", url, headers, BODY, max_body=65536)
            return response.status

        yield send
    finally:
        await pool.close()


OPEN_CLIENT = {"aiohttp": aiohttp_client, "httpx": httpx_client, "callbid": callbid_client}


# ---------------------------------------------------------------- measuring


@dataclass
class Tally:
    """What ended inside the measured window: requests as each one ends, fan-outs as their
    last request does."""

    measuring: bool = False
    fanouts: int = 0  # every answer 200
    requests: int = 0  # answered 200
    errors: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)

    def record_request(self, outcome: int | Exception) -> bool:
        """Whether it was answered 200."""
        if outcome == 200:
            if self.measuring:
                self.requests += 1
            return True
        if self.measuring:
            kind = f"HTTP {outcome}" if isinstance(outcome, int) else type(outcome).__name__
            self.errors[kind] += 1
        return False

    def record_fanout(self, answered: Sequence[bool], elapsed_s: float) -> None:
        if self.measuring and all(answered):
            self.fanouts += 1
            self.latencies_s.append(elapsed_s)


@dataclass(frozen=True)
class ClientResult:
    """One client's measured window."""

    client: str
    warmup_s: float
    seconds: float
    cpu_s: float
    tally: Tally

    @property
    def fanouts_per_s(self) -> float:
        return self.tally.fanouts / self.seconds

    @property
    def requests_per_s(self) -> float:
        return self.tally.requests / self.seconds

    @property
    def errors(self) -> int:
        return sum(self.tally.errors.values())

    @property
    def cpu_us_per_request(self) -> float:
        sent = self.tally.requests + self.errors
        return self.cpu_s / sent * 1e6 if sent else math.nan

    def latency_ms(self, percent: float) -> float:
        """Nearest-rank percentile of the successful fan-outs' latency; NaN without any."""
        ordered = sorted(self.tally.latencies_s)
        if not ordered:
            return math.nan
        return ordered[max(math.ceil(percent / 100 * len(ordered)) - 1, 0)] * 1000


async def request(send: Send, url: str, tally: Tally) -> bool:
    try:
        status = await send(url)
    except Exception as exc:  # every failure is counted, none stops the bench
        return tally.record_request(exc)
    return tally.record_request(status)


async def fan_out(send: Send, urls: Sequence[str], tally: Tally) -> None:
    started = time.perf_counter()
    answered = await asyncio.gather(*(request(send, url, tally) for url in urls))
    tally.record_fanout(answered, time.perf_counter() - started)


class Warmth:
    """Whether every coroutine has finished a first fan-out, so every connection is open."""

    def __init__(self, coroutines: int) -> None:
        self.cold = coroutines
        self.warm = asyncio.Event()

    def one_warm(self) -> None:
        self.cold -= 1
        if self.cold == 0:
            self.warm.set()


async def keep_fanning_out(
    send: Send, urls: Sequence[str], tally: Tally, warmth: Warmth, stop: asyncio.Event
) -> None:
    await fan_out(send, urls, tally)
    warmth.one_warm()
    while not stop.is_set():
        await fan_out(send, urls, tally)


async def warm_up(warmth: Warmth, seconds: float) -> float:
    """Wait `seconds`, then until every coroutine is warm (MAX_WARMUP_S at most); the wait."""
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(warmth.warm.wait(), MAX_WARMUP_S - seconds)
    return time.perf_counter() - started


async def finish(workers: Sequence[asyncio.Task[None]]) -> None:
    """Let the fan-outs in flight end; cancel those that take longer than a request may."""
    _, late = await asyncio.wait(workers, timeout=REQUEST_TIMEOUT_S * 2)
    for worker in late:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def measure_client(
    client: str, urls: Sequence[str], args: argparse.Namespace
) -> ClientResult:
    """`args.concurrency` fan-outs in flight: uncounted for `args.warmup` s and until each
    coroutine has done one, then counted for `args.seconds`."""
    tally, warmth, stop = Tally(), Warmth(args.concurrency), asyncio.Event()
    async with OPEN_CLIENT[client](args.concurrency * len(urls)) as send:
        workers = [
            asyncio.create_task(keep_fanning_out(send, urls, tally, warmth, stop))
            for _ in range(args.concurrency)
        ]
        warmup_s = await warm_up(warmth, args.warmup)
        tally.measuring = True
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.sleep(args.seconds)
        tally.measuring = False
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stop.set()
        await finish(workers)
    return ClientResult(client, warmup_s, wall, cpu, tally)


def run_on(loop: str, main: Coroutine[Any, Any, Any]) -> Any:
    """Run `main` on a fresh event loop of the kind named."""
    if loop == "uvloop":
        if uvloop is None:
            main.close()
            raise BenchError("uvloop is not installed (--loop asyncio runs without it)")
        return uvloop.run(main)
    return asyncio.run(main)


def cores_for(pin: bool) -> tuple[int | None, int | None]:
    """The bench's core and the buyers' core: the first two this process may use, when it
    may use two and `pin`; else None, None."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin or len(cores) < 2:
        return None, None
    return cores[0], cores[1]


@contextlib.contextmanager
def pinned_to(core: int | None) -> Iterator[None]:
    """This thread on `core` (None: unchanged), its former cores restored on exit."""
    if core is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# ---------------------------------------------------------------- report


def table(results: Sequence[ClientResult]) -> str:
    columns = ("fan-outs/s", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "warm-up s")
    widths = (11, 10, 8, 8, 7, 11, 10)
    lines = [" ".join([f"{'':8}", *(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))])]
    for r in results:
        lines.append(
            f"{r.client:8} {r.fanouts_per_s:11.1f} {r.requests_per_s:10.1f}"
            f" {r.latency_ms(50):8.2f} {r.latency_ms(99):8.2f} {r.errors:7d}"
            f" {r.cpu_us_per_request:11.1f} {r.warmup_s:10.1f}"
        )
    for r in results:
        if r.errors:
            kinds = ", ".join(f"{kind}={n}" for kind, n in r.tally.errors.most_common())
            lines.append(f"{r.client} errors: {kinds}")
    return "\n".join(lines)


def summary(results: Sequence[ClientResult]) -> dict[str, Any]:
    by_client = {r.client: r for r in results}
    aio, hx, own = by_client["aiohttp"], by_client["httpx"], by_client["callbid"]
    ratio = aio.fanouts_per_s / hx.fanouts_per_s if hx.fanouts_per_s else None
    own_ratio = own.fanouts_per_s / aio.fanouts_per_s if aio.fanouts_per_s else None
    return {
        "aiohttp_per_s": round(aio.fanouts_per_s, 1),
        "httpx_per_s": round(hx.fanouts_per_s, 1),
        "callbid_per_s": round(own.fanouts_per_s, 1),
        "aiohttp_errors": aio.errors,
        "httpx_errors": hx.errors,
        "callbid_errors": own.errors,
        "ratio": round(ratio, 3) if ratio is not None else None,
        "callbid_ratio": round(own_ratio, 3) if own_ratio is not None else None,
    }


# ---------------------------------------------------------------- main


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of 0 or more")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=positive, default=5)
    parser.add_argument("--concurrency", type=positive, default=64, help="fan-outs in flight")
    parser.add_argument("--seconds", type=non_negative_float, default=5.0, help="measured")
    parser.add_argument("--warmup", type=non_negative_float, default=1.0, help="not counted")
    parser.add_argument("--delay-ms", type=non_negative_float, default=0.0, help="buyers' delay")
    default_loop = "uvloop" if uvloop is not None else "asyncio"
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default=default_loop)
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no CPU affinity")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be more than 0")
    return args


def bench(args: argparse.Namespace) -> int:
    mine, theirs = cores_for(args.pin)
    where = f"bench on core {mine}, buyers on core {theirs}" if mine is not None else "unpinned"
    print(
        f"{args.buyers} buyers (delay {args.delay_ms:g} ms), {args.concurrency} fan-outs in"
        f" flight, {args.loop} loop, {where}; {args.warmup:g} s warm-up, {args.seconds:g} s"
    )
    results = []
    with running_buyers(args.buyers, args.delay_ms, theirs) as urls, pinned_to(mine):
        for client in CLIENTS:
            print(f"[bench] {client} ...", file=sys.stderr, flush=True)
            results.append(run_on(args.loop, measure_client(client, urls, args)))
    print(table(results))
    print(json.dumps(summary(results)), flush=True)
    return 1 if any(r.errors or not r.tally.fanouts for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
