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
from tests.conftest import BACKENDS, Service, owner_view

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


@pytest.mark.parametrize(
    ("names", "code"),
    [
        (["error", "garbage"], "buyers_failed"),
        (["error", "hang"], "buyers_timed_out"),
        (["hang", "empty", "error"], "buyers_declined"),
    ],
)
async def test_no_bid_from_buyers_says_how_far_they_got(
    svc: Service, buyers: str, names: list[str], code: str
) -> None:
    built = await bidding_campaign(svc, buyers, names)
    response = await ping(svc, built)
    body = response.json()
    assert body == {"uuid": body["uuid"], "status": "no-target", "reason_code": code}
    for name in names:
        assert name not in response.text


# --- configuration through the admin API ----------------------------------------------------


async def admin(svc: Service, built: Built, method: str, path: str, body: Any = None) -> Any:
    return await svc.client.request(
        method, f"/api/v1{path}", json=body, headers={"Authorization": f"Bearer {built.token}"}
    )


async def test_admin_api_stores_a_template_with_overrides_and_routes_with_it(
    svc: Service, buyers: str
) -> None:
    built = await bidding_campaign(svc, buyers, [])
    config = {
        "template": "callbid",
        "url": f"{buyers}/rich",
        "mapping": {"accepted": "accepted", "accepted_values": ["true"], "bid": "bid"},
    }
    created = await admin(
        svc,
        built,
        "POST",
        "/targets",
        {"name": "api buyer", "destination": "+13125550199", "passthrough": config, "bid": 1.5},
    )
    assert created.status_code == 201, created.text
    target = created.json()
    assert target["passthrough"] == config
    assert target["bid"] == 1.5
    pooled = await admin(
        svc, built, "PATCH", f"/campaigns/{built.campaign_id}", {"target_ids": [target["id"]]}
    )
    assert pooled.status_code == 200, pooled.text

    body = (await ping(svc, built)).json()

    assert body["status"] == "reserved"
    assert body["retreaver_payout"] == 15.0
    removed = await admin(svc, built, "PATCH", f"/targets/{target['id']}", {"passthrough": None})
    assert removed.status_code == 200
    assert removed.json()["passthrough"] is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"template": "custom", "url": "ftp://buyer.example/bid", "mapping": {"bid": "bid"}},
            "url",
        ),
        (
            {"template": "custom", "url": "https://buyer.example/bid", "mapping": {"bid": "a[["}},
            "bid",
        ),
        ({"template": "custom", "url": "https://buyer.example/bid"}, "mapping"),
        ({"template": "nope", "url": "https://buyer.example/bid"}, "template"),
        (
            {
                "template": "ringba",
                "url": "https://buyer.example/bid",
                "headers": {"X-Evil": "a\r\nInjected: 1"},
            },
            "header",
        ),
    ],
)
async def test_admin_api_refuses_a_bad_passthrough_with_the_reason(
    svc: Service, config: dict[str, Any], message: str
) -> None:
    built = await build_campaign(svc.runtime.sessions)
    target = {"name": "bad", "destination": "+13125550199", "passthrough": config}

    response = await admin(svc, built, "POST", "/targets", target)

    assert response.status_code == 422, response.text
    assert message in response.json()["info"]
    listed = await admin(svc, built, "GET", "/targets")
    assert [t["name"] for t in listed.json()] == ["target0"]


async def test_a_campaign_passthrough_gates_targets_without_their_own(
    svc: Service, buyers: str
) -> None:
    built = await build_campaign(svc.runtime.sessions)
    gate = {"template": "custom", "url": f"{buyers}/empty", "mapping": {"accepted": "accepted"}}
    changed = await admin(
        svc, built, "PATCH", f"/campaigns/{built.campaign_id}", {"passthrough": gate}
    )
    assert changed.status_code == 200, changed.text

    body = (await ping(svc, built)).json()

    assert body["status"] == "no-target"
    assert body["reason_code"] == "buyers_declined"
    view = await owner_view(svc, built, body["uuid"])
    assert [(r["target_name"], r["outcome"]) for r in view["decision_log"]] == [
        ("target0", "ping_declined"),
        ("campaign passthrough", "ping_declined"),
    ]


# --- metrics ---------------------------------------------------------------------------------


async def test_metrics_count_buyers_outcomes_latency_and_timeouts(
    svc: Service, buyers: str
) -> None:
    built = await bidding_campaign(svc, buyers, ["rich", "slow", "error"])
    await ping(svc, built)

    response = await svc.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    rich, slow, failing = (str(t) for t in built.target_ids)
    assert f'callbid_buyer_pings_total{{buyer="{rich}",outcome="accepted"}} 1.0' in text
    assert f'callbid_buyer_pings_total{{buyer="{slow}",outcome="timeout"}} 1.0' in text
    assert f'callbid_buyer_pings_total{{buyer="{failing}",outcome="error"}} 1.0' in text
    assert f'callbid_buyer_timeouts_total{{buyer="{slow}"}} 1.0' in text
    assert f'callbid_buyer_ping_seconds_count{{buyer="{rich}"}} 1.0' in text
    assert f'callbid_buyer_breaker_state{{buyer="{failing}"}} 0.0' in text
    assert 'callbid_ping_seconds_count{status="reserved"} 1.0' in text


async def test_a_failing_buyer_opens_its_breaker_and_is_skipped(
    make_service: Any, buyers: str
) -> None:
    async with make_service(buyer_allow_networks=LOOPBACK, breaker_failures=2) as svc:
        built = await bidding_campaign(svc, buyers, ["error", "modest"])
        for n in range(3):
            await ping(svc, built, caller=f"+1303555{n:04d}")

        body = (await ping(svc, built, caller="+13035559999")).json()

        view = await owner_view(svc, built, body["uuid"])
        failing = view["decision_log"][0]
        assert failing["outcome"] == "ping_skipped"
        assert failing["ping"]["detail"] == "circuit open"
        assert view["decision_log"][1]["outcome"] == "selected"
        text = (await svc.client.get("/metrics")).text
        assert f'callbid_buyer_breaker_state{{buyer="{built.target_ids[0]}"}} 2.0' in text
