"""bench/hotstate.py on a tiny run (`pytest bench`): its own Redis, both scripts, the JSON."""

from __future__ import annotations

import json
import shutil

import pytest

from hotstate import main


@pytest.mark.redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
@pytest.mark.parametrize("held", [False, True], ids=["plain", "held"])
def test_tiny_run(held: bool, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--store", "both", "--calls", "200", "--rounds", "1"] + (["--held"] if held else [])
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("redis_us_per_reserve", "redis_us_per_claim", "baseline_us_per_reserve"):
        assert result[name] > 0
    assert result["pings_per_redis_core"] == round(1e6 / result["redis_us_per_reserve"])
    # The rewrite calls fewer commands than the baseline for the same orders.
    assert result["redis_calls_per_reserve"] < result["baseline_calls_per_reserve"]
    assert result["redis_calls_per_claim"] <= result["baseline_calls_per_claim"]
