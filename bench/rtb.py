"""Benchmark callbid RTB pings against GET /healthz with wrk on 127.0.0.1 and report both."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from redis import Redis

BENCH_DIR = Path(__file__).resolve().parent
PING_SCRIPT = BENCH_DIR / "ping.lua"
LOCALHOST = "127.0.0.1"
HEALTH_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
DEMO_TIMEOUT_S = 60.0
WRK_SLACK_S = 30.0
MAX_FAILED_SHARE = 0.01
NUMBER_SPACE = 48_000_000  # caller numbers ping.lua cycles through
RUN_STRIDE = 8_000_000  # caller numbers set aside for each wrk run
#: --store redis runs on its own PostgreSQL database and Redis database, emptied first.
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
BENCH_DATABASE = "callbid_bench"
REDIS_URL = "redis://127.0.0.1:6379/12"
PERCENTILES = (50, 75, 90, 99)
MS_PER_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
PR_SET_PDEATHSIG = 1

REQUESTS_PER_S = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.M)
LATENCY_LINE = re.compile(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
REQUEST_COUNT = re.compile(r"^\s+(\d+) requests in ", re.M)
NON_2XX = re.compile(r"^\s+Non-2xx or 3xx responses:\s+(\d+)\s*$", re.M)
SOCKET_ERRORS = re.compile(
    r"^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$", re.M
)
TRACEBACK = "Traceback (most recent call last):"
COUNT_LINE = re.compile(r"^callbid-count (code|status) (\d+) (.*)$", re.M)


class BenchError(Exception):
    """The benchmark could not run or its result is not acceptable; the message says why."""


@dataclass
class WrkResult:
    """One wrk run, as parsed from its output (latencies in ms)."""

    requests_per_s: float
    requests: int
    latency_ms: dict[int, float]
    non_2xx: int = 0
    socket_errors: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors


@dataclass
class Target:
    """Where the pings go and who sends them."""

    base_url: str
    ping_url: str
    key: str
    publisher_id: str


# ---------------------------------------------------------------- wrk output


def parse_wrk(text: str) -> WrkResult:
    """Parse `wrk --latency` output (plus ping.lua's count lines); BenchError when incomplete."""
    rate = REQUESTS_PER_S.search(text)
    count = REQUEST_COUNT.search(text)
    if rate is None or count is None:
        raise BenchError(f"cannot read wrk output:\n{text}")
    latency = {int(p): float(v) * MS_PER_UNIT[u] for p, v, u in LATENCY_LINE.findall(text)}
    missing = [p for p in PERCENTILES if p not in latency]
    if missing:
        raise BenchError(f"wrk output lacks latency percentiles {missing}:\n{text}")
    non_2xx = NON_2XX.search(text)
    errors = SOCKET_ERRORS.search(text)
    counts: dict[str, dict[str, int]] = {"code": {}, "status": {}}
    for kind, number, name in COUNT_LINE.findall(text):
        counts[kind][name] = counts[kind].get(name, 0) + int(number)
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        requests=int(count.group(1)),
        latency_ms=latency,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
        codes=counts["code"],
        statuses=counts["status"],
    )


def run_wrk(
    url: str, connections: int, seconds: int, pin: list[str], env: dict[str, str] | None = None
) -> WrkResult:
    """One wrk run on one thread; with `env` it runs ping.lua (POST pings), else plain GETs."""
    script = ["-s", str(PING_SCRIPT)] if env is not None else []
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *script, url]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + WRK_SLACK_S,
        check=False,
        preexec_fn=_die_with_parent,
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse_wrk(done.stdout)


def ping_env(target: Target, offset: int, *, count: bool) -> dict[str, str]:
    return {
        **os.environ,
        "CALLBID_BENCH_KEY": target.key,
        "CALLBID_BENCH_PUBLISHER": target.publisher_id,
        "CALLBID_BENCH_OFFSET": str(offset % NUMBER_SPACE),
        "CALLBID_BENCH_COUNT": "1" if count else "0",
    }


# ---------------------------------------------------------------- server


def core_split(workers: int = 1) -> tuple[str, str]:
    """CPU list for the server and for wrk (the last core). One worker gets every core but
    the last; several workers get every core, the last one shared with wrk."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) == 1:
        return str(cores[0]), str(cores[0])
    server = cores if workers > 1 else cores[:-1]
    return ",".join(map(str, server)), str(cores[-1])


def pinned(cores: str) -> list[str]:
    return ["taskset", "-c", cores] if shutil.which("taskset") else []


def callbid_exe() -> str:
    beside = Path(sys.executable).with_name("callbid")
    found = str(beside) if beside.exists() else shutil.which("callbid")
    if found is None:
        raise BenchError("callbid is not installed (activate the virtualenv)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


async def _recreate_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def fresh_stores(postgres_server: str, database: str, redis_url: str) -> dict[str, str]:
    """Empty the bench's own PostgreSQL database and Redis database (a cluster URL names a
    cluster the bench has just started, empty); their env settings."""
    asyncio.run(_recreate_database(postgres_server, database))
    if not redis_url.startswith("redis+cluster://"):
        client = Redis.from_url(redis_url)
        try:
            client.flushdb()
        finally:
            client.close()
    host = urlsplit(postgres_server).netloc
    return {
        "CALLBID_DATABASE_URL": f"postgresql+asyncpg://{host}/{database}",
        "CALLBID_REDIS_URL": redis_url,
        "CALLBID_STORE": "redis",
    }


def server_env(store: str, workdir: Path) -> dict[str, str]:
    env = {**os.environ, "CALLBID_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/callbid.db"}
    if store == "redis":
        env |= fresh_stores(POSTGRES_SERVER, BENCH_DATABASE, REDIS_URL)
    return env


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the bench dies, so no server outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM; SIGKILL to the server's process group (its workers too) after the grace period."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the leader is not reaped yet: the group is ours
        proc.wait()


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def healthy(url: str) -> bool:
    with (
        contextlib.suppress(urllib.error.URLError, OSError),
        urllib.request.urlopen(url, timeout=1) as answer,
    ):
        return bool(answer.status == 200)
    return False


def wait_healthy(proc: subprocess.Popen[bytes], url: str, stderr: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited ({proc.returncode}):\n{tail(stderr)}")
        if healthy(url):
            return
        time.sleep(0.1)
    raise BenchError(f"{url} not healthy after {HEALTH_TIMEOUT_S:.0f} s:\n{tail(stderr)}")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str
    workdir: Path
    env: dict[str, str]

    @property
    def stderr(self) -> Path:
        return self.workdir / "server.stderr"


@contextlib.contextmanager
def running_server(
    store: str, workers: int, cores: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`callbid serve` in a temporary directory, healthy, stopped and removed on exit; `env`
    replaces the environment `store` stands for."""
    with tempfile.TemporaryDirectory(prefix="callbid-bench-") as tmp:
        workdir, port = Path(tmp), free_port()
        env = env if env is not None else server_env(store, workdir)
        serve = [callbid_exe(), "serve", "--host", LOCALHOST, "--port", str(port)]
        with (
            (workdir / "server.stdout").open("wb") as out,
            (workdir / "server.stderr").open("wb") as err,
        ):
            proc = subprocess.Popen(
                [*pinned(cores), *serve, "--workers", str(workers)],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            server = Server(proc, f"http://{LOCALHOST}:{port}", workdir, env)
            wait_healthy(proc, f"{server.base_url}/healthz", server.stderr)
            yield server
        finally:
            stop(proc)


def callbid_json(args: list[str], env: dict[str, str] | None, cwd: Path | None) -> dict[str, Any]:
    """The JSON object a `callbid` command prints as its last line."""
    command = " ".join(["callbid", *args])
    done = subprocess.run(
        [callbid_exe(), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BenchError(f"{command} failed ({done.returncode}):\n{done.stderr}")
    try:
        answer: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise BenchError(f"{command} printed no JSON: {lines[-1]!r}") from exc
    return answer


def demo_credentials(env: dict[str, str] | None, cwd: Path | None) -> dict[str, str]:
    """What `callbid demo --json` prints: rtb_url, key, publisher_id, admin_token."""
    answer = callbid_json(["demo", "--json"], env, cwd)
    return {name: str(value) for name, value in answer.items()}


def ping_target(base_url: str, demo: dict[str, str]) -> Target:
    """Pings go to our own server, at the path `rtb_url` names (the demo may not know our port)."""
    path = urlsplit(demo.get("rtb_url", "")).path or "/rtbs.json"
    return Target(base_url, base_url + path, demo["key"], demo["publisher_id"])


def local_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != LOCALHOST:
        raise BenchError(f"--url must be http://{LOCALHOST}[:port]: only localhost is targeted")
    return f"http://{parts.netloc}"


# ---------------------------------------------------------------- measuring


@dataclass
class Measured:
    pings: WrkResult
    healthz: WrkResult


def measure(target: Target, args: argparse.Namespace, cores: str, say: Say) -> Measured:
    """/healthz on the fresh server, a warm-up, then pings (answers counted by ping.lua)."""
    pin, offset = pinned(cores), random.randrange(NUMBER_SPACE)
    conns, seconds = args.concurrency, args.seconds
    say(f"healthz: {conns} connections, {seconds} s")
    healthz = run_wrk(f"{target.base_url}/healthz", conns, seconds, pin)
    if args.warmup > 0:
        say(f"warming up {args.warmup} s")
        run_wrk(target.ping_url, conns, args.warmup, pin, ping_env(target, offset, count=False))
    say(f"pings: {conns} connections, {seconds} s")
    env = ping_env(target, offset + RUN_STRIDE, count=True)
    pings = run_wrk(target.ping_url, conns, seconds, pin, env)
    return Measured(pings, healthz)


# ---------------------------------------------------------------- report


class Say:
    """Progress on stderr unless quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[bench] {message}", file=sys.stderr, flush=True)


def table(rows: dict[str, WrkResult]) -> str:
    columns = ("req/s", "p50 ms", "p90 ms", "p99 ms", "non-2xx", "errors")
    widths = (10, 9, 9, 9, 8, 7)
    lines = [" ".join([f"{'':8}", *(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))])]
    for name, r in rows.items():
        lat = r.latency_ms
        lines.append(
            f"{name:8} {r.requests_per_s:10.1f} {lat[50]:9.2f} {lat[90]:9.2f} {lat[99]:9.2f}"
            f" {r.non_2xx:8d} {r.socket_errors:7d}"
        )
    return "\n".join(lines)


def counts_text(pings: WrkResult) -> str:
    def fmt(counts: dict[str, int]) -> str:
        ordered = sorted(counts.items(), key=lambda item: -item[1])
        return ", ".join(f"{name}={count}" for name, count in ordered) or "none"

    return (
        f"ping answers ({pings.requests} requests):\n"
        f"  JSON status: {fmt(pings.statuses)}\n  HTTP code:   {fmt(pings.codes)}"
    )


def summary(measured: Measured) -> dict[str, float]:
    pings, healthz = measured.pings, measured.healthz
    ratio = pings.requests_per_s / healthz.requests_per_s if healthz.requests_per_s else 0.0
    return {
        "pings_per_s": round(pings.requests_per_s, 1),
        "p50_ms": round(pings.latency_ms[50], 3),
        "p99_ms": round(pings.latency_ms[99], 3),
        "healthz_per_s": round(healthz.requests_per_s, 1),
        "ratio": round(ratio, 3),
    }


def problems(measured: Measured) -> list[str]:
    pings = measured.pings
    share = pings.failed / pings.requests if pings.requests else 1.0
    if share > MAX_FAILED_SHARE:
        return [f"pings: {pings.failed} of {pings.requests} failed ({share:.1%})"]
    return []


def server_log_note(server: Server | None) -> str | None:
    """Tracebacks in the server's stderr, summarised by their unindented lines."""
    if server is None or not server.stderr.exists():
        return None
    text = server.stderr.read_text(errors="replace")
    tracebacks = text.count(TRACEBACK)
    if not tracebacks:
        return None
    lines = [line for line in text.splitlines() if line and not line.startswith((" ", "INFO:"))]
    distinct = Counter(line for line in lines if line != TRACEBACK)
    top = "\n".join(f"  {n:5d} x {line[:160]}" for line, n in distinct.most_common(8))
    return f"server stderr holds {tracebacks} tracebacks:\n{top}"


def report(
    measured: Measured,
    args: argparse.Namespace,
    note: str | None,
    extra: dict[str, object] | None = None,
) -> None:
    if not args.json_only:
        print(table({"pings": measured.pings, "healthz": measured.healthz}))
        print(counts_text(measured.pings))
        if note:
            print(note)
    print(json.dumps(summary(measured) | (extra or {})), flush=True)


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=positive, required=True, help="wrk connections")
    parser.add_argument("--seconds", type=positive, required=True, help="each measured run")
    parser.add_argument("--warmup", type=non_negative, default=2, help="ping warm-up seconds")
    parser.add_argument("--url", help=f"use this running server (http://{LOCALHOST}:PORT)")
    parser.add_argument("--key", help="RTB key with --url (default: callbid demo --json)")
    parser.add_argument("--publisher-id", help="publisher_id with --url")
    parser.add_argument("--workers", type=positive, default=1, help="callbid serve --workers")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument(
        "--baseline-workers",
        type=positive,
        help="also run this many workers, alternating, and report the throughput ratio",
    )
    parser.add_argument("--rounds", type=positive, default=1, help="with --baseline-workers")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON line")
    return parser.parse_args(argv)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def bench(args: argparse.Namespace, say: Say) -> int:
    if args.url:
        base = local_base_url(args.url)
        given = {"key": args.key, "publisher_id": args.publisher_id}
        demo = {} if all(given.values()) else demo_credentials(None, None)
        demo |= {name: value for name, value in given.items() if value}
        measured = measure(ping_target(base, demo), args, core_split()[1], say)
        return verdict(measured, base, None, args, None)
    if args.baseline_workers is not None:
        return compare_workers(args, say)
    with started_server(args, args.workers, say) as server:
        demo = demo_credentials(server.env, server.workdir)
        target = ping_target(server.base_url, demo)
        measured = measure(target, args, core_split(args.workers)[1], say)
        return verdict(measured, server.base_url, server, args, None)


@contextlib.contextmanager
def started_server(args: argparse.Namespace, workers: int, say: Say) -> Iterator[Server]:
    server_cores, wrk_cores = core_split(workers)
    say(f"starting callbid serve --workers {workers} (cores {server_cores}; wrk on {wrk_cores})")
    started = time.monotonic()
    with running_server(args.store, workers, server_cores) as server:
        say(f"healthy after {time.monotonic() - started:.1f} s at {server.base_url}")
        yield server


def compare_workers(args: argparse.Namespace, say: Say) -> int:
    """Alternate runs of `--baseline-workers` and `--workers`, `--rounds` times, each on a
    fresh server; report the median run of `--workers` and the median throughput ratio."""
    runs: dict[int, list[Measured]] = {args.baseline_workers: [], args.workers: []}
    for round_ in range(args.rounds):
        for workers in runs:
            say(f"round {round_ + 1}/{args.rounds}: {workers} worker(s)")
            with started_server(args, workers, say) as server:
                demo = demo_credentials(server.env, server.workdir)
                target = ping_target(server.base_url, demo)
                measured = measure(target, args, core_split(workers)[1], say)
                if verdict(measured, server.base_url, server, args, None, quiet=True):
                    return 1
                runs[workers].append(measured)
    ratios = [
        mine.pings.requests_per_s / base.pings.requests_per_s
        for mine, base in zip(runs[args.workers], runs[args.baseline_workers], strict=True)
    ]
    baseline = statistics.median(m.pings.requests_per_s for m in runs[args.baseline_workers])
    extra = {
        "workers": args.workers,
        "baseline_workers": args.baseline_workers,
        "baseline_pings_per_s": round(baseline, 1),
        "scale": round(statistics.median(ratios), 3),
        "scales": [round(r, 3) for r in ratios],
    }
    if not args.json_only:
        for workers, measured_runs in runs.items():
            rates = ", ".join(f"{m.pings.requests_per_s:.0f}" for m in measured_runs)
            print(f"{workers} worker(s): pings/s per round {rates}")
    report(median_run(runs[args.workers]), args, None, extra)
    return 0


def median_run(runs: list[Measured]) -> Measured:
    ordered = sorted(runs, key=lambda m: m.pings.requests_per_s)
    return ordered[len(ordered) // 2]


def verdict(
    measured: Measured,
    base_url: str,
    server: Server | None,
    args: argparse.Namespace,
    extra: dict[str, object] | None,
    *,
    quiet: bool = False,
) -> int:
    found = problems(measured)
    if server is not None and server.proc.poll() is not None:
        found.append(f"server died ({server.proc.returncode}):\n{tail(server.stderr)}")
    elif not healthy(f"{base_url}/healthz"):
        found.append("server does not answer /healthz after the run")
    if not quiet or found:
        report(measured, args, server_log_note(server), extra)
    for problem in found:
        print(f"[bench] FAILED {problem}", file=sys.stderr)
    return 1 if found else 0


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


WRK_INSTALL = (
    "this benchmark drives callbid with wrk, which is not on PATH: install it with"
    " `sudo apt-get install wrk` (Debian, Ubuntu) or `brew install wrk` (macOS)"
)


def require_wrk() -> None:
    """BenchError naming the install command when wrk is missing (before anything starts)."""
    if shutil.which("wrk") is None:
        raise BenchError(WRK_INSTALL)


def run_bench(run: Callable[[], int]) -> int:
    """A bench's exit status: `run()`'s, 1 with the reason on stderr when it raised
    BenchError or a subprocess timed out, 130 when interrupted (SIGTERM and SIGHUP too)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        return run()
    except BenchError as exc:
        print(f"[bench] {exc}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as exc:
        print(f"[bench] timed out: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def run() -> int:
        require_wrk()
        return bench(args, Say(args.json_only))

    return run_bench(run)


if __name__ == "__main__":
    sys.exit(main())
