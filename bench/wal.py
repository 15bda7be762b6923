"""SQLite upkeep under load: how large the write-ahead log grows while wrk pings the embedded
default (SQLite, one worker) for `--seconds`, and how soon after the load stops it is emptied.

Prints the log's size sampled every `--sample` seconds (as a few percentiles), the database's
size, the pings' rate and, as the last line, one JSON object:

    {"pings_per_s": ..., "seconds": ..., "wal_max_mb": ..., "wal_p50_mb": ..., "wal_p99_mb": ...,
     "wal_bound_mb": ..., "db_mb": ..., "idle_truncated_after_s": ...}

`wal_bound_mb` is the soft limit (`sqlite_writer.WAL_SOFT_LIMIT_BYTES`); exit status 1 when the
log was not emptied within `--idle-timeout` seconds of the load's end.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from callbid.adapters.storage.sqlite_writer import IDLE_TRUNCATE_S, WAL_SOFT_LIMIT_BYTES
from rtb import (
    NUMBER_SPACE,
    BenchError,
    WrkResult,
    core_split,
    demo_credentials,
    ping_env,
    ping_target,
    pinned,
    run_wrk,
    running_server,
)

MB = 1_000_000


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def sample_until(path: Path, every: float, stop: threading.Event) -> list[int]:
    sizes = []
    while not stop.wait(every):
        sizes.append(size(path))
    return sizes


def percentile(values: Sequence[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=300, help="pings under wrk")
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections")
    parser.add_argument("--sample", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--idle-timeout", type=float, default=4 * IDLE_TRUNCATE_S + 10)
    args = parser.parse_args(argv)
    server_cores, wrk_cores = core_split()
    print(f"[wal] callbid serve on cores {server_cores}, wrk on {wrk_cores}", file=sys.stderr)
    try:
        with running_server("memory", 1, server_cores) as server:
            wal = server.workdir / "callbid.db-wal"
            demo = demo_credentials(server.env, server.workdir)
            target = ping_target(server.base_url, demo)
            env = ping_env(target, random.randrange(NUMBER_SPACE), count=True)
            stop = threading.Event()
            sizes: list[int] = []
            sampler = threading.Thread(
                target=lambda: sizes.extend(sample_until(wal, args.sample, stop)), daemon=True
            )
            sampler.start()
            print(f"[wal] pings: {args.concurrency} connections, {args.seconds} s", file=sys.stderr)
            pings: WrkResult = run_wrk(
                target.ping_url, args.concurrency, args.seconds, pinned(wrk_cores), env
            )
            stop.set()
            sampler.join()
            sizes = sizes or [size(wal)]
            load_end = time.monotonic()
            truncated_after = None
            while time.monotonic() - load_end < args.idle_timeout:
                if size(wal) == 0:
                    truncated_after = time.monotonic() - load_end
                    break
                time.sleep(0.1)
            db_bytes = size(server.workdir / "callbid.db")
    except BenchError as exc:
        print(f"[wal] {exc}", file=sys.stderr)
        return 2
    figures = {
        "pings_per_s": pings.requests_per_s,
        "seconds": args.seconds,
        "wal_max_mb": round(max(sizes) / MB, 1),
        "wal_p50_mb": round(percentile(sizes, 0.5) / MB, 1),
        "wal_p99_mb": round(percentile(sizes, 0.99) / MB, 1),
        "wal_bound_mb": round(WAL_SOFT_LIMIT_BYTES / MB, 1),
        "db_mb": round(db_bytes / MB, 1),
        "idle_truncated_after_s": None if truncated_after is None else round(truncated_after, 1),
    }
    print(f"pings/s {pings.requests_per_s:.1f}, {pings.requests} requests, non-2xx {pings.non_2xx}")
    print("WAL MB: p50 {wal_p50_mb}  p99 {wal_p99_mb}  max {wal_max_mb}".format_map(figures))
    print("bound {wal_bound_mb} MB; database {db_mb} MB".format_map(figures))
    idle = "not within --idle-timeout" if truncated_after is None else f"{truncated_after:.1f} s"
    print(f"idle: WAL emptied after {idle}")
    print(json.dumps(figures))
    return 0 if truncated_after is not None else 1


if __name__ == "__main__":
    sys.exit(main())
