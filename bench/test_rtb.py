"""The wrk output parser and verdicts of bench/rtb.py, on real wrk output (`pytest bench`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtb import BenchError, Measured, WrkResult, parse_wrk, problems, summary

SAMPLES = Path(__file__).parent / "wrk_samples"


def sample(name: str) -> WrkResult:
    return parse_wrk((SAMPLES / name).read_text())


def test_counted_pings() -> None:
    result = sample("pings_counted.txt")
    assert result.requests_per_s == pytest.approx(1052.41)
    assert result.requests == 2125
    assert result.latency_ms == {50: 10.94, 75: 19.80, 90: 49.04, 99: 255.32}
    assert (result.non_2xx, result.socket_errors) == (0, 0)
    assert result.codes == {"200": 2125}
    assert result.statuses == {"reserved": 2125}


def test_non_2xx_and_counts() -> None:
    result = sample("pings_401.txt")
    assert result.non_2xx == result.requests == 5765
    assert result.codes == {"401": 5765}
    assert result.statuses == {"failed": 5765}


def test_units_us_and_s() -> None:
    assert sample("socket_errors.txt").latency_ms[50] == pytest.approx(0.047)
    assert sample("seconds.txt").latency_ms[99] == pytest.approx(1140.0)


def test_socket_errors_add_up() -> None:
    result = sample("socket_errors.txt")
    assert result.socket_errors == 19607
    assert result.failed == 19607


def test_not_wrk_output() -> None:
    with pytest.raises(BenchError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_verdicts() -> None:
    healthz = sample("healthz.txt")
    good = Measured(sample("pings_counted.txt"), healthz)
    assert problems(good) == []
    assert summary(good)["ratio"] == pytest.approx(1052.41 / 4252.04, abs=0.001)
    assert problems(Measured(sample("pings_401.txt"), healthz))
    assert problems(Measured(sample("no_requests.txt"), healthz))
