"""bench/fanout.py: the mock buyers' HTTP framing, the late-answer count and one short run."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from fanout import (
    BadRequest,
    Lateness,
    RequestSplitter,
    late_answers,
    parse_lateness,
    start_buyers,
)
from rtb import BenchError

FANOUT = Path(__file__).resolve().with_name("fanout.py")
SUMMARY_KEYS = {"pings_per_s", "p50_ms", "p99_ms", "overhead_p99_ms", "late"}


def post(body: bytes, length_header: str = "Content-Length") -> bytes:
    head = f"POST /bid HTTP/1.1\r\nHost: buyer\r\n{length_header}: {len(body)}\r\n\r\n"
    return head.encode() + body


# ---------------------------------------------------------------- request framing


def test_pipelined_requests_in_one_read() -> None:
    stream = post(b'{"caller": "+12125550100"}') + b"GET / HTTP/1.1\r\n\r\n" + post(b"{}")
    assert RequestSplitter().feed(stream) == 3


def test_a_request_split_anywhere_completes_once() -> None:
    stream = post(b'{"zip": "10001"}', "content-length") * 2
    for cut in range(1, len(stream)):
        splitter = RequestSplitter()
        first = splitter.feed(stream[:cut])
        assert first + splitter.feed(stream[cut:]) == 2, cut
        assert first == (1 if cut >= len(stream) // 2 else 0), cut


def test_byte_by_byte() -> None:
    splitter = RequestSplitter()
    stream = post(b"x" * 300) + post(b"")
    counts = [splitter.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert sum(counts) == 2
    assert counts[len(post(b"x" * 300)) - 1] == 1
    assert counts[-1] == 1


def test_unsupported_framing_is_refused() -> None:
    with pytest.raises(BadRequest):
        RequestSplitter().feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    with pytest.raises(BadRequest):
        RequestSplitter().feed(b"GET /" + b"a" * 20_000)


async def test_buyer_answers_pipelined_requests_after_the_delay() -> None:
    counts = Counter[str]()
    servers = await start_buyers([10.0, 11.0], 0.05, counts)
    try:
        port = servers[1].sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        stream = post(b'{"caller": "+12125550100"}') * 2
        writer.write(stream[:10])
        await writer.drain()
        writer.write(stream[10:])
        answers = [await read_answer(reader) for _ in range(2)]
        elapsed = time.monotonic() - started
        writer.close()
        await writer.wait_closed()
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
    assert answers == [{"accepted": True, "bid": 11.0, "number": None}] * 2
    assert 0.05 <= elapsed < 1.0
    assert counts == {"served": 2, "connections": 1}


async def read_answer(reader: asyncio.StreamReader) -> object:
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if line)
    return json.loads(await reader.readexactly(int(fields[b"Content-Length"])))


# ---------------------------------------------------------------- late answers


def lateness(max_us: int, within_pct: float, timeouts: int = 0) -> Lateness:
    return Lateness(deadline_us=1_000_000, max_us=max_us, within_pct=within_pct, timeouts=timeouts)


def test_none_late_only_when_the_slowest_was_in_time() -> None:
    assert late_answers(lateness(1_000_000, 100.0), 5000) == 0
    assert late_answers(lateness(1_000_001, 100.0), 5000) == 1


def test_late_from_the_share_within() -> None:
    # 1219 of 1536 answers within the deadline, as fanout.lua reported it for a real run
    assert late_answers(lateness(1_200_000, 79.361979166666686), 1536) == 317
    assert late_answers(lateness(1_200_000, 0.0), 1536) == 1536


def test_timeouts_count_as_late() -> None:
    assert late_answers(lateness(0, 100.0, timeouts=3), 10) == 3
    assert late_answers(lateness(1_500_000, 50.0, timeouts=2), 10) == 7


def test_late_line_is_read() -> None:
    text = (
        "  1536 requests in 2.00s, 177.00KB read\n"
        "callbid-late deadline_us=21000 max_us=25772 within_pct=79.361979166666686 timeouts=0\n"
    )
    assert parse_lateness(text) == Lateness(21000, 25772, 79.361979166666686, 0)
    with pytest.raises(BenchError):
        parse_lateness("  1536 requests in 2.00s, 177.00KB read\n")


# ---------------------------------------------------------------- the whole bench


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk")
def test_a_short_run_answers_every_ping_in_time() -> None:
    command = [sys.executable, str(FANOUT), "--concurrency", "4", "--seconds", "2"]
    command += ["--buyers", "3", "--warmup", "0", "--json-only"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.keys() == {*SUMMARY_KEYS, "concurrency", "runs", "healthz_per_s", "healthz_ratio"}
    assert all(isinstance(result[key], int | float) for key in SUMMARY_KEYS)
    assert result["runs"] == [{key: result[key] for key in (*SUMMARY_KEYS, "concurrency")}]
    assert result["late"] == 0
    assert result["pings_per_s"] > 0
    assert result["overhead_p99_ms"] == pytest.approx(result["p99_ms"] - 20, abs=0.01)
    assert result["concurrency"] == 4
    assert result["healthz_per_s"] > 0
    assert result["healthz_ratio"] == pytest.approx(
        result["pings_per_s"] / result["healthz_per_s"], abs=0.001
    )
