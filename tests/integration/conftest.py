"""Fixtures of the integration tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from callbid.hotstate.redis import RedisHotState, connect_redis

#: The contract suite's database, which the tests on it empty.
REDIS_URL = os.environ.get("CALLBID_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def store() -> AsyncIterator[RedisHotState]:
    """A Redis store on an emptied `REDIS_URL`, closed after the test (the cluster tests have
    their own)."""
    client = connect_redis(REDIS_URL, timeout=1.0, pool_size=4)
    await client.flushdb()
    hot = RedisHotState(client)
    yield hot
    await hot.close()
