"""Chaining: a target that is another callbid's RTB endpoint is reserved there during the ping;
two instances, the downstream one served over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from random import Random
from typing import Any

import httpx
import pytest
import uvicorn

from callbid.api.app import create_app
from tests.builders import Built, build_campaign
from tests.conftest import FakeClock, Service, owner_view, sqlite_settings

CALLER = "+13035551234"
DOWNSTREAM_NUMBER = "+18885550777"


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[Service, str]]:
    """A second callbid behind a real uvicorn server on a free port; (service, base URL)."""
    settings = sqlite_settings(tmp_path / "downstream")
    (tmp_path / "downstream").mkdir()
    clock = FakeClock()
    app = create_app(settings, clock=clock, rng=Random(3))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            yield Service(app, client, clock, settings), base
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def downstream(tmp_path: Path) -> AsyncIterator[tuple[Service, str]]:
    async with served(tmp_path) as pair:
        yield pair


@pytest.fixture
async def upstream(make_service: Callable[..., Any]) -> AsyncIterator[Service]:
    async with make_service(buyer_allow_networks=["127.0.0.0/8"]) as svc:
        yield svc


async def downstream_campaign(svc: Service, *, open_buyer: bool) -> Built:
    return await build_campaign(
        svc.runtime.sessions,
        numbers=(DOWNSTREAM_NUMBER,),
        targets=[{"name": "downstream buyer", "paused": not open_buyer}],
        criteria=[{"publisher_id": "upstream", "payout": 22.5, "buffer_seconds": 75}],
    )


async def upstream_campaign(
    svc: Service, base: str, down: Built, fallback: dict[str, Any] | None = None
) -> Built:
    """A campaign routing by bid to the downstream (chained) and to a local static bidder."""
    chain = {
        "template": "callbid",
        "url": f"{base}/rtbs.json?key={down.key}&publisher_id=upstream",
    }
    return await build_campaign(
        svc.runtime.sessions,
        campaign={"routing_strategy": "bid"},
        targets=[
            {"name": "chained", "passthrough": chain, "priority": 1},
            fallback or {"name": "local fallback", "priority": 2, "bid": 5.0},
        ],
        criteria=[{"publisher_id": "pub-1", "payout_kind": "revshare", "payout": 40.0}],
        key={"timeout_seconds": 2.0},
    )


async def ping(svc: Service, built: Built) -> dict[str, Any]:
    response = await svc.client.post(
        "/rtbs.json",
        params={
            "key": built.key,
            "publisher_id": "pub-1",
            "caller_number": CALLER,
            "caller_zip": "80301",
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_chained_target_is_reserved_downstream_and_dialled_there(
    upstream: Service, downstream: tuple[Service, str]
) -> None:
    down_svc, base = downstream
    down = await downstream_campaign(down_svc, open_buyer=True)
    up = await upstream_campaign(upstream, base, down)

    body = await ping(upstream, up)

    assert body["status"] == "reserved"
    assert body["inbound_number"] == up.numbers[0]  # the publisher calls us
    assert body["retreaver_payout"] == 9.0  # 40 % of the downstream's 22.50
    assert body["retreaver_seconds"] == 75  # the downstream's buffer
    view = await owner_view(upstream, up, body["uuid"])
    assert view["target_id"] == up.target_ids[0]
    assert view["destination"] == DOWNSTREAM_NUMBER  # and we dial the downstream's number
    chained = view["decision_log"][0]
    assert chained["outcome"] == "selected"
    assert chained["ping"]["number"] == DOWNSTREAM_NUMBER
    # The downstream holds a reservation for the same caller on that number.
    listed = await down_svc.client.post(
        "/rtbs.json",
        params={"key": down.key, "publisher_id": "upstream", "caller_number": CALLER},
    )
    shielded = listed.json()
    assert shielded["retreaver_ping_shield"] is True
    assert shielded["inbound_number"] == DOWNSTREAM_NUMBER


async def test_no_target_downstream_moves_on_to_the_next_target(
    upstream: Service, downstream: tuple[Service, str]
) -> None:
    down_svc, base = downstream
    down = await downstream_campaign(down_svc, open_buyer=False)
    up = await upstream_campaign(upstream, base, down)

    body = await ping(upstream, up)

    assert body["status"] == "reserved"
    assert body["retreaver_payout"] == 2.0  # 40 % of the fallback's static bid
    view = await owner_view(upstream, up, body["uuid"])
    assert view["target_id"] == up.target_ids[1]
    assert view["destination"] is None
    rows = [(r["target_name"], r["outcome"]) for r in view["decision_log"]]
    assert rows == [("chained", "ping_declined"), ("local fallback", "selected")]
    assert view["decision_log"][0]["ping"]["detail"] == "no-target"


async def test_an_outbid_chained_reservation_is_given_back_downstream(
    upstream: Service, downstream: tuple[Service, str]
) -> None:
    down_svc, base = downstream
    down = await downstream_campaign(down_svc, open_buyer=True)
    up = await upstream_campaign(upstream, base, down, {"name": "richer", "bid": 40.0})

    body = await ping(upstream, up)

    assert body["retreaver_payout"] == 16.0  # 40 % of the richer static bid
    view = await owner_view(upstream, up, body["uuid"])
    chained = view["decision_log"][0]
    assert chained["outcome"] == "outbid"
    downstream_uuid = json.loads(chained["ping"]["body"])["uuid"]
    status = None
    for _ in range(100):  # the release is sent in the background
        answer = await down_svc.client.get(
            f"/rtbs/{downstream_uuid}.json", params={"key": down.key}
        )
        status = answer.json()["status"]
        if status == "wiped":
            break
        await asyncio.sleep(0.02)
    assert status == "wiped"
