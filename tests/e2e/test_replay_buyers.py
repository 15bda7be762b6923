"""Replaying a request whose buyers were pinged, through HTTP: stored replies answer again, new
buyers are shown `would_ping`, and no buyer hears of the replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.builders import build_campaign
from tests.conftest import BACKENDS, Service, owner_view
from tests.e2e.test_buyer_pings import LOOPBACK, passthrough, ping
from tests.e2e.test_replay import admin, replay, rows_by_name

BIDS = {"rich": 30.0, "modest": 12.0, "newcomer": 99.0}


@pytest.fixture
async def buyers() -> AsyncIterator[tuple[str, list[str]]]:
    """A local server answering as each buyer of BIDS; its base URL and the paths it heard."""
    heard: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        heard.append(request.path)
        return web.json_response({"accepted": True, "bid": BIDS[request.path.strip("/")]})

    app = web.Application()
    for name in BIDS:
        app.router.add_post(f"/{name}", answer)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", heard
    finally:
        await runner.cleanup()


@pytest.fixture(params=BACKENDS)
async def svc(request: pytest.FixtureRequest, make_service: Any) -> AsyncIterator[Service]:
    async with make_service(request.param, buyer_allow_networks=LOOPBACK) as service:
        yield service


async def test_stored_replies_answer_and_new_buyers_are_not_pinged(
    svc: Service, buyers: tuple[str, list[str]]
) -> None:
    base, heard = buyers
    targets = [{"name": n, "passthrough": passthrough(f"{base}/{n}")} for n in ("rich", "modest")]
    built = await build_campaign(
        svc.runtime.sessions,
        campaign={"routing_strategy": "bid"},
        targets=targets,
        criteria=[{"publisher_id": "pub-1", "payout_kind": "revshare", "payout": 50.0}],
    )
    first = (await ping(svc, built)).json()
    assert sorted(heard) == ["/modest", "/rich"]
    newcomer = await admin(
        svc,
        built,
        "POST",
        "/targets",
        json={
            "name": "newcomer",
            "destination": "+13125550100",
            "passthrough": passthrough(f"{base}/newcomer"),
        },
    )
    ids = [*built.target_ids, newcomer["id"]]
    await admin(svc, built, "PATCH", f"/campaigns/{built.campaign_id}", json={"target_ids": ids})
    stored = await owner_view(svc, built, first["uuid"])

    body = await replay(svc, built, first["uuid"])

    assert sorted(heard) == ["/modest", "/rich"]
    rows = rows_by_name(body)
    assert (rows["rich"]["before"], rows["rich"]["after"]) == ("selected", "selected")
    assert (rows["modest"]["before"], rows["modest"]["after"]) == ("outbid", "outbid")
    assert (rows["newcomer"]["before"], rows["newcomer"]["after"]) == (None, "would_ping")
    assert body["now"]["target_name"] == "rich"
    assert body["now"]["payout"] == stored["payout"] == 15.0
    rich = next(e for e in body["decision_log"] if e["target_name"] == "rich")
    assert rich["ping"]["bid"] == 30.0
    assert await owner_view(svc, built, first["uuid"]) == stored
