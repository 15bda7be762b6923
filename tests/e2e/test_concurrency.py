"""Concurrent pings through HTTP never hold more slots than a cap allows."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import build_campaign


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    caps=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=3),
    group_cap=st.one_of(st.none(), st.integers(min_value=0, max_value=8)),
    pings=st.integers(min_value=1, max_value=40),
)
async def test_reservations_never_exceed_caps(
    make_service: Any, caps: list[int], group_cap: int | None, pings: int
) -> None:
    async with make_service() as svc:
        groups = (
            [{"members": list(range(len(caps))), "concurrency_cap": group_cap}]
            if group_cap is not None
            else []
        )
        built = await build_campaign(
            svc.runtime.sessions,
            targets=[{"concurrency_cap": cap} for cap in caps],
            groups=groups,
            key={"count_on_reserved": True, "ttl_seconds": 60},
        )

        async def ping(index: int) -> Any:
            params = {
                "key": built.key,
                "publisher_id": "p",
                "caller_number": f"+1212555{index:04d}",
            }
            return (await svc.client.post("/rtbs.json", params=params)).json()

        answers = await asyncio.gather(*(ping(i) for i in range(pings)))
        reserved = [a for a in answers if a["status"] == "reserved"]
        assert all(a["status"] in ("reserved", "no-target") for a in answers)
        capacity = sum(caps) if group_cap is None else min(sum(caps), group_cap)
        assert len(reserved) == min(pings, capacity)
        assert len({a["uuid"] for a in answers}) == pings
