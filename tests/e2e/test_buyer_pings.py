"""Live buyer pings through HTTP, against real local HTTP servers acting as buyers: deadline,
misbehaving buyers, route by bid, revshare, the decision log, metrics and chaining."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.builders import Built, build_campaign
from tests.conftest import BACKENDS, Service

CALLER = "+13035551234"
LOOPBACK = ["127.0.0.0/8"]
TIMEOUT = 0.5
HUGE = b'{"accepted": true, "bid": 99, "pad": "' + b"x" * 2_000_000 + b'"}'


async def rich(_request: web.Request) -> web.Response:
    return web.json_response({"accepted": True, "bid": 30.0, "seconds": 120})


async def modest(_request: web.Request) -> web.Response:
    return web.json_response({"accepted": True, "bid": 12.0})


async def slow(_request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({"accepted": True, "bid": 500.0})


async def error(_request: web.Request) -> web.Response:
    return web.json_response({"accepted": True, "bid": 400.0}, status=500)


async def garbage(_request: web.Request) -> web.Response:
    return web.Response(body=b"<html>bid=300</html>", content_type="text/html")


async def huge(_request: web.Request) -> web.Response:
    return web.Response(body=HUGE, content_type="application/json")


async def empty(_request: web.Request) -> web.Response:
    return web.Response(status=204)


async def redirect(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/rich")


async def hang(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await asyncio.sleep(5)
    return response


BUYERS = {
    "rich": rich,
    "modest": modest,
    "slow": slow,
    "error": error,
    "garbage": garbage,
    "huge": huge,
    "empty": empty,
    "redirect": redirect,
    "hang": hang,
}
EXPECTED = {
    "rich": ("selected", "accepted", None),
    "modest": ("outbid", "accepted", None),
    "slow": ("ping_timeout", "timeout", None),
    "error": ("ping_error", "error", "http 500"),
    "garbage": ("ping_error", "error", "malformed JSON"),
    "huge": ("ping_error", "error", "response over 65536 bytes"),
    "empty": ("ping_declined", "declined", "no content"),
    "redirect": ("ping_error", "error", "redirect 302"),
    "hang": ("ping_timeout", "timeout", None),
}


@pytest.fixture
async def buyers() -> AsyncIterator[str]:
    """One local server answering as every kind of buyer, one path each; its base URL."""
    app = web.Application()
    for name, handler in BUYERS.items():
        app.router.add_post(f"/{name}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def passthrough(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "template": "custom",
        "url": url,
        "body": '{"caller": "[caller_number]", "zip": "[caller_zip]"}',
        "mapping": {"accepted": "accepted", "bid": "bid", "seconds": "seconds"},
        **extra,
    }


async def bidding_campaign(svc: Service, base: str, names: list[str], **kw: Any) -> Built:
    targets = [{"name": n, "passthrough": passthrough(f"{base}/{n}")} for n in names]
    return await build_campaign(
        svc.runtime.sessions,
        campaign={"routing_strategy": "bid"},
        targets=targets,
        criteria=[{"publisher_id": "pub-1", "payout_kind": "revshare", "payout": 50.0}],
        key={"timeout_seconds": TIMEOUT},
        **kw,
    )


async def ping(svc: Service, built: Built, caller: str = CALLER) -> Any:
    params = {
        "key": built.key,
        "publisher_id": "pub-1",
        "caller_number": caller,
        "caller_zip": "80301",
    }
    return await svc.client.post("/rtbs.json", params=params)


async def owner_view(svc: Service, built: Built, uuid: str) -> dict[str, Any]:
    response = await svc.client.get(
        f"/call_reservations/{uuid}", headers={"Authorization": f"Bearer {built.token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(params=BACKENDS)
async def svc(request: pytest.FixtureRequest, make_service: Any) -> AsyncIterator[Service]:
    """The service on each deployment, allowed to ping buyers on loopback."""
    async with make_service(request.param, buyer_allow_networks=LOOPBACK) as service:
        yield service


async def test_misbehaving_buyers_never_stall_or_break_the_ping(svc: Service, buyers: str) -> None:
    built = await bidding_campaign(svc, buyers, list(BUYERS))

    started = time.monotonic()
    response = await ping(svc, built)
    elapsed = time.monotonic() - started

    assert elapsed <= TIMEOUT + 0.05, elapsed
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "reserved"
    assert body["retreaver_payout"] == 15.0  # 50 % revshare of the winning 30.00
    assert body["retreaver_seconds"] == 120  # the buyer's own conversion buffer
    view = await owner_view(svc, built, body["uuid"])
    rows = {row["target_name"]: row for row in view["decision_log"]}
    for name, (outcome, ping_outcome, detail) in EXPECTED.items():
        row = rows[name]
        assert row["outcome"] == outcome, (name, row)
        assert row["ping"]["outcome"] == ping_outcome, (name, row)
        if detail is not None:
            assert row["ping"]["detail"] == detail, (name, row)
    assert rows["rich"]["ping"]["bid"] == 30.0
    assert rows["rich"]["ping"]["http_status"] == 200
    assert rows["rich"]["ping"]["latency_ms"] > 0
    assert rows["error"]["ping"]["http_status"] == 500
    assert rows["garbage"]["ping"]["body"] == "<html>bid=300</html>"
    assert view["revenue"] == 30.0
    assert view["target_id"] == built.target_ids[0]
