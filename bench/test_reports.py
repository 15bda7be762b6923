"""bench/reports.py on a tiny data set (`pytest bench`): the same figures from rows and rollups."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta

import pytest

from reports import BATCH, batches, main, reservation_record

URL = os.environ.get(
    "CALLBID_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def test_records_and_batches() -> None:
    now = datetime(2026, 11, 23, 15, tzinfo=UTC)
    rng = random.Random(1)
    statuses = {reservation_record(rng, now - timedelta(hours=1), now)[7] for _ in range(200)}
    assert statuses == {"no-target", "wiped", "claimed", "expired"}
    assert reservation_record(rng, now, now)[7] in {"no-target", "wiped", "claimed", "reserved"}
    sizes = [len(b) for b in batches(iter([()] * (BATCH + 1)))]
    assert sizes == [BATCH, 1]


@pytest.mark.postgres
def test_tiny_run(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--database-url", URL, "--reservations", "3000", "--calls", "300", "--runs", "1"]
    assert main([*argv, "--json-only"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["same_figures"] is True
    assert result["reservations"] == 3000
    assert result["rollup_rows"] > 0
