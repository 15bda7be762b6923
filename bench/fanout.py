"""Benchmark RTB pings that fan out to mock buyers: pings/s, latency, answers after the deadline.

Starts a fleet of mock buyers in its own process (`--buyers` of them, each on its own
127.0.0.1 port, answering every request after exactly `--delay-ms` with a fixed bid of 10, 11,
12, ...), then `callbid serve` with one worker on SQLite and in-process hot state, allowed to
reach buyers on loopback. Through the admin API it builds a campaign routed by bid whose targets
are those buyers (custom passthrough, POST with the caller's number and ZIP), paying the
publisher a 50 % revshare, behind an RTB key whose buyer deadline is `--timeout-ms`, with TTL
15 s and no ping shield. One sanity ping must be `reserved` with `retreaver_payout` half the
highest bid. Then, for each `--concurrency`, wrk (`fanout.lua`: ping.lua's pings, a new caller
each, plus the late count) runs `--warmup` seconds and then `--seconds` measured.

Output: a table row per concurrency (pings/s, p50/p90/p99/max ms, overhead p99 = p99 minus
`--delay-ms`, late, non-2xx, socket errors, and callbid's CPU use in % of one core), the answers
by JSON status and HTTP code, then as the LAST line one JSON object: `pings_per_s`, `p50_ms`,
`p99_ms`, `overhead_p99_ms`, `late` and `concurrency` of the LAST concurrency given, and `runs`,
a list of the same objects for every concurrency in the order given. `late` counts the pings
answered after the key's deadline: 0 exactly when wrk's slowest answer took at most the
deadline, else the count fanout.lua derives from wrk's latency histogram (exact unless wrk
also counted timeouts, which are added). Exits 1 when the sanity ping fails, when more than 1 %
of the pings failed (non-2xx, socket errors or an answer other than `reserved`), when the
server or the fleet dies or the server logs a traceback; 130 when interrupted.

CPU placement (2 cores here): callbid alone on the first core, wrk and the buyer fleet on the
last (`rtb.core_split(1)`); `--no-pin` leaves placement to the scheduler. One worker is one
event loop, so callbid is measured on one core it has to itself; wrk (about 30 µs a ping) and
the fleet (about 25 µs a buyer request) share the other and stay well under it. Three
alternating runs each of `--concurrency 8 64 --seconds 10` on a quiet machine: pinned
302-314 and 484-598 pings/s, unpinned 293-300 and 399-664; the overhead at 8 was the same
(13-17 ms), so pinned it is, for the steadier figure at 64. The fleet and wrk alone, without
callbid (wrk straight at one buyer, both on one core), add 0.6 ms at p50 and 2.2 ms at p99 to
the 20 ms delay: part of the overhead measured is theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from race import admin
from rtb import (
    LOCALHOST,
    MAX_FAILED_SHARE,
    NUMBER_SPACE,
    RUN_STRIDE,
    WRK_SLACK_S,
    BenchError,
    Say,
    Server,
    Target,
    WrkResult,
    _die_with_parent,
    core_split,
    counts_text,
    demo_credentials,
    healthy,
    non_negative,
    parse_wrk,
    ping_env,
    pinned,
    positive,
    require_wrk,
    run_bench,
    run_wrk,
    running_server,
    server_env,
    server_log_note,
    tail,
)

FANOUT_SCRIPT = Path(__file__).resolve().with_name("fanout.lua")
FLEET_START_S = 15.0
FLEET_STOP_S = 5.0
FIRST_BID = 10.0
REVSHARE_PERCENT = 50.0
TTL_SECONDS = 15
TRACKING_NUMBER = "+18885550142"
SANITY_CALLER = "+13125550123"  # area 312: none of ping.lua's callers
LOOPBACK_NETWORKS = '["127.0.0.0/8"]'
MIN_WRK_TIMEOUT_S = 10
LATE_LINE = re.compile(
    r"^callbid-late deadline_us=(\d+) max_us=(\d+) within_pct=([\d.]+) timeouts=(\d+)\s*$", re.M
)


# ---------------------------------------------------------------- mock buyers


class BadRequest(Exception):
    """The bytes are not HTTP/1.1 requests this mock understands."""


CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*(?=\r\n|$)", re.I)
CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.I)
MAX_HEAD_BYTES = 16_384
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class RequestSplitter:
    """Counts the complete HTTP/1.1 requests of a byte stream fed in pieces of any size: a
    head up to a blank line, then `Content-Length` bytes of body (none without the header)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._length: int | None = None  # of the request at the buffer's start, once known

    def feed(self, data: bytes) -> int:
        """Requests completed by `data`; BadRequest for chunked bodies or an endless head."""
        self._buffer += data
        complete = 0
        while True:
            if self._length is None:
                self._length = self._request_length()
                if self._length is None:
                    return complete
            if len(self._buffer) < self._length:
                return complete
            del self._buffer[: self._length]
            self._length = None
            complete += 1

    def _request_length(self) -> int | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise BadRequest("request head too long")
            return None
        head = bytes(self._buffer[:end])
        if CHUNKED.search(head):
            raise BadRequest("chunked request bodies are not supported")
        length = CONTENT_LENGTH.search(head)
        return end + 4 + (int(length.group(1)) if length else 0)


def buyer_answer(bid: float) -> bytes:
    """The whole HTTP response a buyer sends to every request."""
    body = json.dumps({"accepted": True, "bid": bid, "number": None}).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


class BuyerProtocol(asyncio.Protocol):
    """One connection to a mock buyer: each request is answered `delay` seconds after it
    arrived, by one timer for all the requests that one read completed."""

    def __init__(self, answer: bytes, delay: float, counts: Counter[str]) -> None:
        self.answer, self.delay, self.counts = answer, delay, counts
        self.splitter = RequestSplitter()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.loop = asyncio.get_running_loop()
        self.counts["connections"] += 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            complete = self.splitter.feed(data)
        except BadRequest:
            self.transport.write(BAD_REQUEST)
            self.transport.close()
            return
        if complete:
            self.loop.call_later(self.delay, self._answer, complete)

    def _answer(self, count: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.answer * count)
            self.counts["served"] += count


def buyer_bids(buyers: int) -> list[float]:
    return [FIRST_BID + index for index in range(buyers)]


async def start_buyers(
    bids: Sequence[float], delay_s: float, counts: Counter[str]
) -> list[asyncio.Server]:
    """One listening server per bid on 127.0.0.1, each on a port of its own; `counts` gets
    the connections accepted and the requests answered."""
    loop = asyncio.get_running_loop()
    return [
        await loop.create_server(
            functools.partial(BuyerProtocol, buyer_answer(bid), delay_s, counts),
            LOCALHOST,
            0,
            backlog=1024,
        )
        for bid in bids
    ]


def server_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def serve_fleet(buyers: int, delay_ms: int) -> None:
    """Print `{"ports": [...], "bids": [...]}`, serve until SIGTERM or SIGINT, then print
    `{"served": N, "connections": M}` (requests answered, connections accepted)."""
    counts, bids = Counter[str](), buyer_bids(buyers)
    servers = await start_buyers(bids, delay_ms / 1000, counts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps({"ports": [server_port(s) for s in servers], "bids": bids}), flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    print(json.dumps({name: counts[name] for name in ("served", "connections")}), flush=True)


def run_fleet(buyers: int, delay_ms: int) -> None:
    """The fleet process's main: on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_fleet(buyers, delay_ms))
    else:
        uvloop.run(serve_fleet(buyers, delay_ms))


@dataclass
class Fleet:
    """The running fleet: its buyers' ports and bids, index for index."""

    proc: subprocess.Popen[str]
    ports: list[int]
    bids: list[float]
    stderr: Path
    counts: dict[str, int] = field(default_factory=dict)  # served, connections: once stopped

    def urls(self) -> list[str]:
        return [f"http://{LOCALHOST}:{port}/bid" for port in self.ports]

    def complaints(self) -> str:
        """What the fleet wrote on stderr (nothing, unless it is broken)."""
        return tail(self.stderr)


def read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    return proc.stdout.readline() if ready else ""


def stop_fleet(proc: subprocess.Popen[str]) -> dict[str, int]:
    """SIGTERM (SIGKILL after a grace period); the counts it printed last."""
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=FLEET_STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    with contextlib.suppress(json.JSONDecodeError, IndexError):
        return dict(json.loads(out.strip().splitlines()[-1]))
    return {}


@contextlib.contextmanager
def running_fleet(buyers: int, delay_ms: int, cores: str, workdir: Path) -> Iterator[Fleet]:
    """The mock buyers in a process of their own pinned to `cores`, its stderr in `workdir`,
    stopped on exit; it gets SIGTERM should the bench die. BenchError if it does not start."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-buyers"]
    command += ["--buyers", str(buyers), "--delay-ms", str(delay_ms)]
    stderr = workdir / "fleet.stderr"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [*pinned(cores), *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=_die_with_parent,
        )
    fleet = None
    try:
        line = read_line(proc, FLEET_START_S)
        if not line:
            raise BenchError(f"the buyer fleet did not start ({proc.poll()}):\n{tail(stderr)}")
        started = json.loads(line)
        fleet = Fleet(proc, started["ports"], started["bids"], stderr)
        yield fleet
    finally:
        counts = stop_fleet(proc)
        if fleet is not None:
            fleet.counts = counts


# ---------------------------------------------------------------- late answers


@dataclass(frozen=True)
class Lateness:
    """fanout.lua's `callbid-late` line: wrk's histogram read against the deadline."""

    deadline_us: int
    max_us: int
    within_pct: float
    timeouts: int


def parse_lateness(text: str) -> Lateness:
    """The `callbid-late` line of wrk's output; BenchError without one."""
    found = LATE_LINE.search(text)
    if found is None:
        raise BenchError(f"wrk printed no callbid-late line (fanout.lua not run?):\n{text}")
    deadline, slowest, within, timeouts = found.groups()
    return Lateness(int(deadline), int(slowest), float(within), int(timeouts))


def late_answers(lateness: Lateness, requests: int) -> int:
    """Answers slower than the deadline among `requests`: 0 exactly when the slowest one was
    not and wrk counted no timeout, else at least 1. Exact while wrk counted no timeout;
    with timeouts (answers slower than wrk's --timeout, far above the deadline, or still
    pending at the end) they are added, an upper bound: wrk may count one twice."""
    late = round((100.0 - lateness.within_pct) / 100.0 * requests)
    if lateness.max_us > lateness.deadline_us:
        late = max(late, 1)
    return late + lateness.timeouts


# ---------------------------------------------------------------- callbid and its campaign


def fanout_env(workdir: Path) -> dict[str, str]:
    """The embedded default (SQLite in `workdir`, in-process hot state), buyers on loopback."""
    env = server_env("memory", workdir) | {"CALLBID_STORE": "memory"}
    return env | {"CALLBID_BUYER_ALLOW_NETWORKS": LOOPBACK_NETWORKS}


def passthrough(url: str) -> dict[str, Any]:
    return {
        "template": "custom",
        "url": url,
        "method": "POST",
        "body": json.dumps({"caller": "[caller_number]", "zip": "[caller_zip]"}),
        "mapping": {"accepted": "accepted", "bid": "bid"},
    }


def build_campaign(base: str, token: str, fleet: Fleet, timeout_ms: int) -> str:
    """A campaign routed by bid over one target per buyer; the RTB key string."""
    target_ids = [
        admin(
            base,
            token,
            "/targets",
            {
                "name": f"buyer {index + 1}",
                "destination": f"+1212555{index + 200:04d}",
                "passthrough": passthrough(url),
            },
        )["id"]
        for index, url in enumerate(fleet.urls())
    ]
    campaign = {"name": "fanout bench", "routing_strategy": "bid", "target_ids": target_ids}
    campaign_id = admin(base, token, "/campaigns", campaign)["id"]
    number = {"campaign_id": campaign_id, "number": TRACKING_NUMBER}
    admin(base, token, "/tracking-numbers", number)
    criterion = {"campaign_id": campaign_id, "payout_kind": "revshare", "payout": REVSHARE_PERCENT}
    admin(base, token, "/conversion-criteria", criterion)
    key = {
        "campaign_id": campaign_id,
        "timeout_seconds": timeout_ms / 1000,
        "ttl_seconds": TTL_SECONDS,
        "shield_scope": "off",
    }
    return str(admin(base, token, "/rtb-keys", key)["key"])


def sanity_ping(ping_url: str, key: str, publisher_id: str, bids: Sequence[float]) -> float:
    """One ping must be reserved for half the highest bid; its latency in ms, else BenchError."""
    query = {"key": key, "publisher_id": publisher_id, "caller_number": SANITY_CALLER}
    body = urlencode(query | {"caller_zip": "10001"}).encode()
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(ping_url, data=body, timeout=30) as answer:
            text = answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        raise BenchError(f"sanity ping answered {exc.code}: {exc.read()[:300]!r}") from exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    found = json.loads(text)
    expected = round(max(bids) * REVSHARE_PERCENT / 100, 2)
    payout = found.get("retreaver_payout")
    if found.get("status") != "reserved" or payout is None or abs(payout - expected) > 0.005:
        raise BenchError(f"sanity ping: wanted reserved with retreaver_payout {expected}: {text}")
    return elapsed_ms


# ---------------------------------------------------------------- wrk


@dataclass
class Run:
    """One measured wrk run at one concurrency."""

    concurrency: int
    wrk: WrkResult
    lateness: Lateness
    late: int
    delay_ms: int
    cpu_share: float  # callbid's CPU time over the run's wall time

    @property
    def failed(self) -> int:
        """Answers other than a reservation (non-2xx too), and socket errors."""
        return self.wrk.requests - self.wrk.statuses.get("reserved", 0) + self.wrk.socket_errors

    def figures(self) -> dict[str, float | int]:
        lat = self.wrk.latency_ms
        return {
            "concurrency": self.concurrency,
            "pings_per_s": round(self.wrk.requests_per_s, 1),
            "p50_ms": round(lat[50], 3),
            "p99_ms": round(lat[99], 3),
            "overhead_p99_ms": round(lat[99] - self.delay_ms, 3),
            "late": self.late,
        }


def wrk_pings(
    ping_url: str, connections: int, seconds: int, pin: list[str], env: dict[str, str]
) -> tuple[WrkResult, Lateness]:
    """One wrk run of fanout.lua on one thread; its timeout is far above the deadline, so
    that late answers stay in the latency histogram."""
    deadline_s = float(env["CALLBID_BENCH_DEADLINE_MS"]) / 1000
    timeout_s = max(MIN_WRK_TIMEOUT_S, int(10 * deadline_s))
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", f"{timeout_s}s", "-s", str(FANOUT_SCRIPT), ping_url]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + timeout_s + WRK_SLACK_S,
        check=False,
        preexec_fn=_die_with_parent,
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse_wrk(done.stdout), parse_lateness(done.stdout)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Pinger:
    """Where wrk pings, pinned how, and the process whose CPU time the runs take."""

    target: Target
    pin: list[str]
    server_pid: int


def measure(pinger: Pinger, concurrency: int, args: argparse.Namespace, offset: int) -> Run:
    """`--warmup` seconds of pings, then `--seconds` measured, each on caller numbers of its
    own from `offset` on."""
    target, pin = pinger.target, pinger.pin
    deadline = {"CALLBID_BENCH_DEADLINE_MS": str(args.timeout_ms)}
    if args.warmup:
        env = ping_env(target, offset, count=False) | deadline
        wrk_pings(target.ping_url, concurrency, args.warmup, pin, env)
    env = ping_env(target, offset + RUN_STRIDE // 2, count=True) | deadline
    cpu, wall = cpu_seconds(pinger.server_pid), time.monotonic()
    result, lateness = wrk_pings(target.ping_url, concurrency, args.seconds, pin, env)
    share = (cpu_seconds(pinger.server_pid) - cpu) / (time.monotonic() - wall)
    if lateness.deadline_us != args.timeout_ms * 1000:
        raise BenchError(f"fanout.lua took the deadline for {lateness.deadline_us} µs")
    late = late_answers(lateness, result.requests)
    return Run(concurrency, result, lateness, late, args.delay_ms, share)


# ---------------------------------------------------------------- report


def table(runs: Sequence[Run]) -> str:
    columns = {"conns": 6, "pings/s": 9, "p50 ms": 8, "p90 ms": 8, "p99 ms": 8, "max ms": 8}
    columns |= {"over p99": 9, "late": 6, "non-2xx": 8, "errors": 7, "cpu %": 6}
    lines = [" ".join(f"{name:>{width}}" for name, width in columns.items())]
    for run in runs:
        lat, wrk = run.wrk.latency_ms, run.wrk
        lines.append(
            f"{run.concurrency:6d} {wrk.requests_per_s:9.1f} {lat[50]:8.2f} {lat[90]:8.2f}"
            f" {lat[99]:8.2f} {run.lateness.max_us / 1000:8.2f} {lat[99] - run.delay_ms:9.2f}"
            f" {run.late:6d} {wrk.non_2xx:8d} {wrk.socket_errors:7d} {100 * run.cpu_share:6.0f}"
        )
    return "\n".join(lines)


def problems(runs: Sequence[Run]) -> list[str]:
    found = []
    for run in runs:
        share = run.failed / run.wrk.requests if run.wrk.requests else 1.0
        if share > MAX_FAILED_SHARE:
            found.append(
                f"concurrency {run.concurrency}: {run.failed} of {run.wrk.requests} pings"
                f" failed or were not reserved ({share:.1%})"
            )
    return found


def summary(runs: Sequence[Run], healthz_per_s: float) -> dict[str, Any]:
    """The last run's figures, every run's under `runs`, and the machine's pace: `/healthz`
    on the same server at the last concurrency, and the last run's pings/s against it."""
    last = runs[-1].figures()
    ratio = last["pings_per_s"] / healthz_per_s if healthz_per_s else 0.0
    pace = {"healthz_per_s": round(healthz_per_s, 1), "healthz_ratio": round(ratio, 3)}
    return last | pace | {"runs": [run.figures() for run in runs]}


def report(
    runs: Sequence[Run], healthz_per_s: float, args: argparse.Namespace, notes: Sequence[str]
) -> None:
    if not args.json_only:
        print(table(runs))
        print(f"GET /healthz at {runs[-1].concurrency} connections: {healthz_per_s:.1f}/s")
        for run in runs:
            print(f"concurrency {run.concurrency}: {counts_text(run.wrk)}")
        for note in notes:
            print(note)
    print(json.dumps(summary(runs, healthz_per_s)), flush=True)


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--concurrency", type=positive, nargs="+", help="wrk connections; one run for each"
    )
    parser.add_argument("--seconds", type=positive, default=10, help="each measured run")
    parser.add_argument("--warmup", type=non_negative, default=2, help="seconds before each run")
    parser.add_argument("--buyers", type=positive, default=5, help="mock buyers in the fleet")
    parser.add_argument("--delay-ms", type=non_negative, default=20, help="buyers' answer delay")
    parser.add_argument(
        "--timeout-ms", type=positive, default=1000, help="the RTB key's buyer deadline"
    )
    parser.add_argument("--no-pin", action="store_true", help="leave CPU placement to Linux")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON line")
    parser.add_argument("--serve-buyers", action="store_true", help="be the buyer fleet (internal)")
    args = parser.parse_args(argv)
    if not args.serve_buyers and not args.concurrency:
        parser.error("--concurrency is required")
    return args


def placement(args: argparse.Namespace) -> tuple[str, str]:
    """CPU lists for callbid and for wrk with the fleet: a core each, or all with --no-pin."""
    if args.no_pin:
        every = ",".join(map(str, sorted(os.sched_getaffinity(0))))
        return every, every
    return core_split(1)


def bench(args: argparse.Namespace, say: Say) -> int:
    server_cores, client_cores = placement(args)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="callbid-fanout-")))
        say(f"buyer fleet: {args.buyers} buyers, {args.delay_ms:g} ms (cores {client_cores})")
        fleet = stack.enter_context(
            running_fleet(args.buyers, args.delay_ms, client_cores, workdir)
        )
        say(f"starting callbid serve --workers 1 (cores {server_cores}; wrk on {client_cores})")
        server = stack.enter_context(running_server("memory", 1, server_cores, fanout_env(workdir)))
        runs = bench_server(server, fleet, client_cores, args, say)
        say(f"baseline: GET /healthz, {runs[-1].concurrency} connections, {args.seconds} s")
        health = run_wrk(
            f"{server.base_url}/healthz", runs[-1].concurrency, args.seconds, pinned(client_cores)
        )
        code = verdict(runs, health.requests_per_s, server, fleet, args)
    served, connections = fleet.counts.get("served"), fleet.counts.get("connections")
    pings = sum(run.wrk.requests for run in runs)
    say(f"buyers answered {served} requests on {connections} connections; {pings} pings measured")
    return code


def bench_server(
    server: Server, fleet: Fleet, wrk_cores: str, args: argparse.Namespace, say: Say
) -> list[Run]:
    """Configure the campaign, check it with one ping, then measure each concurrency."""
    demo = demo_credentials(server.env, server.workdir)
    key = build_campaign(server.base_url, demo["admin_token"], fleet, args.timeout_ms)
    target = Target(server.base_url, f"{server.base_url}/rtbs.json", key, demo["publisher_id"])
    try:
        took = sanity_ping(target.ping_url, key, target.publisher_id, fleet.bids)
    except BenchError as exc:
        raise BenchError(f"{exc}\n{server_log_note(server) or tail(server.stderr, 10)}") from exc
    say(f"sanity ping reserved for half the top bid in {took:.1f} ms")
    pinger = Pinger(target, pinned(wrk_cores), server.proc.pid)
    offset, runs = random.randrange(NUMBER_SPACE), []
    for index, concurrency in enumerate(args.concurrency):
        say(f"pings: {concurrency} connections, {args.warmup} s warm-up, {args.seconds} s")
        runs.append(measure(pinger, concurrency, args, offset + index * RUN_STRIDE))
    return runs


def verdict(
    runs: list[Run], healthz_per_s: float, server: Server, fleet: Fleet, args: argparse.Namespace
) -> int:
    """Report the runs; 1 when a run failed, the server or the fleet died, or the server
    logged a traceback."""
    found = problems(runs)
    if fleet.proc.poll() is not None:
        found.append(f"the buyer fleet died ({fleet.proc.returncode}):\n{fleet.complaints()}")
    elif fleet.complaints():
        found.append(f"the buyer fleet complained:\n{fleet.complaints()}")
    if server.proc.poll() is not None:
        found.append(f"server died ({server.proc.returncode}):\n{tail(server.stderr)}")
    elif not healthy(f"{server.base_url}/healthz"):
        found.append("server does not answer /healthz after the run")
    note = server_log_note(server)
    if note:
        found.append(note)
    report(runs, healthz_per_s, args, [note] if note else [])
    for problem in found:
        print(f"[bench] FAILED {problem}", file=sys.stderr)
    return 1 if found else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_buyers:
        run_fleet(args.buyers, args.delay_ms)
        return 0

    def run() -> int:
        require_wrk()
        return bench(args, Say(args.json_only))

    return run_bench(run)


if __name__ == "__main__":
    sys.exit(main())
