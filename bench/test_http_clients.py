"""bench/http_clients.py: the mock buyer's request framing and answers, and one short run."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from http_clients import ANSWER, BAD_REQUEST, BadRequest, BuyerProtocol, RequestFraming

HTTP_CLIENTS = Path(__file__).resolve().with_name("http_clients.py")
SUMMARY_KEYS = {
    "aiohttp_per_s",
    "httpx_per_s",
    "callbid_per_s",
    "aiohttp_errors",
    "httpx_errors",
    "callbid_errors",
    "ratio",
    "callbid_ratio",
}


def post(body: bytes, length_header: str = "Content-Length") -> bytes:
    head = f"POST /bid HTTP/1.1\r\nHost: buyer\r\n{length_header}: {len(body)}\r\n\r\n"
    return head.encode() + body


class Transport:
    """What a BuyerProtocol writes, and whether it closed the connection."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


# ---------------------------------------------------------------- request framing


def test_pipelined_requests_in_one_read() -> None:
    stream = post(b'{"caller": "+12125550100"}') + b"GET / HTTP/1.1\r\n\r\n" + post(b"{}")
    assert RequestFraming().feed(stream) == 3


def test_a_request_split_anywhere_completes_once() -> None:
    stream = post(b'{"zip": "10001"}', "content-length") * 2
    for cut in range(1, len(stream)):
        framing = RequestFraming()
        first = framing.feed(stream[:cut])
        assert first + framing.feed(stream[cut:]) == 2, cut
        assert first == (1 if cut >= len(stream) // 2 else 0), cut


def test_byte_by_byte() -> None:
    framing = RequestFraming()
    stream = post(b"x" * 300) + post(b"")
    counts = [framing.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert sum(counts) == 2
    assert counts[len(post(b"x" * 300)) - 1] == 1
    assert counts[-1] == 1


def test_a_body_that_looks_like_a_head_is_body() -> None:
    body = b"\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 99\r\n\r\n"
    assert RequestFraming().feed(post(body) + post(b"{}")) == 2


def test_unsupported_framing_is_refused() -> None:
    with pytest.raises(BadRequest):
        RequestFraming().feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    with pytest.raises(BadRequest):
        RequestFraming().feed(b"GET /" + b"a" * 20_000)


# ---------------------------------------------------------------- answers


async def test_every_request_is_answered_once_in_order() -> None:
    buyer, transport = BuyerProtocol(0.0), Transport()
    buyer.connection_made(transport)  # type: ignore[arg-type]
    stream = post(b"{}") * 3
    buyer.data_received(stream[:5])
    assert transport.written == b""
    buyer.data_received(stream[5:-1])
    assert transport.written == ANSWER * 2
    buyer.data_received(stream[-1:])
    assert transport.written == ANSWER * 3
    assert json.loads(ANSWER.partition(b"\r\n\r\n")[2]) == {"accepted": True, "bid": 12.5}


async def test_answers_wait_for_the_delay() -> None:
    buyer, transport = BuyerProtocol(0.05), Transport()
    buyer.connection_made(transport)  # type: ignore[arg-type]
    buyer.data_received(post(b"{}") * 2)
    await asyncio.sleep(0)
    assert transport.written == b""
    await asyncio.sleep(0.3)
    assert transport.written == ANSWER * 2


async def test_a_chunked_request_gets_400_and_the_connection_closed() -> None:
    buyer, transport = BuyerProtocol(0.0), Transport()
    buyer.connection_made(transport)  # type: ignore[arg-type]
    buyer.data_received(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert (transport.written, transport.closed) == (BAD_REQUEST, True)


# ---------------------------------------------------------------- one short run


@pytest.mark.slow
def test_short_run_prints_the_summary_and_neither_aiohttp_nor_callbid_errs() -> None:
    command = [sys.executable, str(HTTP_CLIENTS), "--buyers", "2", "--concurrency", "4"]
    command += ["--seconds", "1", "--warmup", "0.3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("2 buyers"), done.stdout
    summary = json.loads(lines[-1])
    assert set(summary) == SUMMARY_KEYS
    assert summary["aiohttp_errors"] == 0, done.stdout
    assert summary["callbid_errors"] == 0, done.stdout
    assert summary["aiohttp_per_s"] > 0
    assert summary["callbid_per_s"] > 0
    assert summary["httpx_per_s"] > 0
    assert isinstance(summary["httpx_errors"], int)
    assert summary["ratio"] == pytest.approx(
        summary["aiohttp_per_s"] / summary["httpx_per_s"], rel=0.01
    )
