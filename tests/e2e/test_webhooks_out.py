"""Pixels (webhooks out) through HTTP: configured with the admin API, fired by pings and the
expiry sweep, delivered to real local receivers; a receiver that hangs costs pings nothing."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from sqlalchemy import select

from callbid.adapters.storage import tables as t
from callbid.service.companies import create_company
from callbid.service.maintenance import sweep_once
from tests.builders import Built, build_campaign
from tests.conftest import BACKENDS, Service
from tests.e2e.test_calls import CRITERIA, TOKEN, Carrier, new_sid

API = "/api/v1"
LOOPBACK = ["127.0.0.0/8"]
PIXEL_TIMEOUT = 2.0
FAST_PIXELS = {
    "buyer_allow_networks": LOOPBACK,
    "pixel_poll_seconds": 0.02,
    "pixel_timeout_seconds": PIXEL_TIMEOUT,
    "pixel_backoff_base_seconds": 0.05,
    "pixel_backoff_max_seconds": 0.2,
}


class Receiver:
    """A local pixel receiver: `/ok` answers at once, `/hang` never answers in time."""

    def __init__(self) -> None:
        self.seen: list[web.Request] = []
        self.bodies: list[bytes] = []

    async def ok(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        self.seen.append(request)
        return web.Response(text="thanks")

    async def hang(self, request: web.Request) -> web.Response:
        self.seen.append(request)
        await asyncio.sleep(30)
        return web.Response(text="too late")

    def paths(self) -> list[str]:
        return [request.path for request in self.seen]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    server = Receiver()
    app = web.Application()
    app.router.add_route("*", "/ok", server.ok)
    app.router.add_route("*", "/hang", server.hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield server, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture(params=BACKENDS)
async def any_svc(request: pytest.FixtureRequest, make_service: Any) -> AsyncIterator[Service]:
    async with make_service(request.param, **FAST_PIXELS) as service:
        yield service


@pytest.fixture
async def svc(make_service: Any) -> AsyncIterator[Service]:
    async with make_service(**FAST_PIXELS) as service:
        yield service


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_webhook(svc: Service, built: Built, **body: Any) -> dict[str, Any]:
    payload = {"campaign_id": built.campaign_id, "event": "reserved", **body}
    response = await svc.client.post(f"{API}/webhooks", json=payload, headers=auth(built.token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def ping(svc: Service, built: Built, caller: str, **tags: str) -> dict[str, Any]:
    params = {"key": built.key, "publisher_id": "pub-1", "caller_number": caller, **tags}
    response = await svc.client.post("/rtbs.json", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def eventually(check: Callable[[], bool | Awaitable[bool]], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            result = check()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.02)


async def deliveries(svc: Service, built: Built, webhook_id: int) -> list[dict[str, Any]]:
    response = await svc.client.get(
        f"{API}/webhooks/{webhook_id}/deliveries", headers=auth(built.token)
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_a_reserved_pixel_reaches_its_receiver_rendered(
    any_svc: Service, receiver: tuple[Receiver, str]
) -> None:
    server, base = receiver
    svc = any_svc
    built = await build_campaign(svc.runtime.sessions, criteria=[{"payout": 12.5}])
    webhook = await create_webhook(
        svc,
        built,
        url=f"{base}/ok?caller=[caller_number]&pub=[publisher_id]",
        headers={"X-Reservation": "[uuid]"},
        body='{"uuid": "[uuid]", "payout": [payout], "note": "[note]", "zip": "[caller_zip]"}',
        conditions=[{"tag": "lead_type", "op": "equals", "values": ["auto"]}],
    )
    note = 'say "hi"\nthen } bye'

    fired = await ping(svc, built, "+13035551234", lead_type="Auto", note=note, caller_zip="80301")
    skipped = await ping(svc, built, "+13035551235", lead_type="home")
    await eventually(lambda: len(server.seen) >= 1)
    await asyncio.sleep(0.1)  # time enough for a second one, were it sent

    assert fired["status"] == skipped["status"] == "reserved"
    assert len(server.seen) == 1
    request = server.seen[0]
    assert request.method == "POST"
    assert parse_qs(request.query_string) == {"caller": ["+13035551234"], "pub": ["pub-1"]}
    assert request.headers["X-Reservation"] == fired["uuid"]
    assert request.headers["Content-Type"] == "application/json"
    sent = json.loads(server.bodies[0])
    assert sent == {"uuid": fired["uuid"], "payout": 12.5, "note": note, "zip": "80301"}
    await eventually(lambda: delivered(svc, built, webhook["id"]))
    [delivery] = await deliveries(svc, built, webhook["id"])
    assert delivery["subject"] == fired["uuid"]
    assert delivery["attempts"] == 1
    assert [a["http_status"] for a in delivery["attempt_log"]] == [200]


async def delivered(svc: Service, built: Built, webhook_id: int) -> bool:
    return all(d["status"] == "delivered" for d in await deliveries(svc, built, webhook_id))


async def test_an_expired_pixel_fires_from_the_sweep(
    svc: Service, receiver: tuple[Receiver, str]
) -> None:
    server, base = receiver
    built = await build_campaign(svc.runtime.sessions, key={"ttl_seconds": 15})
    other = await build_campaign(svc.runtime.sessions)
    await create_webhook(svc, built, event="expired", url=f"{base}/ok?r=[reservation_uuid]")
    await create_webhook(svc, built, url=f"{base}/ok?reserved=[uuid]")

    expiring = await ping(svc, built, "+13035551234")
    await ping(svc, other, "+13035551234")
    await eventually(lambda: len(server.seen) == 1)  # the reserved pixel
    svc.clock.advance(20)
    await sweep_once(svc.runtime)
    await eventually(lambda: len(server.seen) == 2)
    await asyncio.sleep(0.1)

    assert [r.query_string for r in server.seen] == [
        f"reserved={expiring['uuid']}",
        f"r={expiring['uuid']}",
    ]
    await sweep_once(svc.runtime)  # nothing expires twice
    await asyncio.sleep(0.1)
    assert len(server.seen) == 2


async def timed_pings(svc: Service, built: Built, first: int, count: int) -> list[float]:
    took = []
    for n in range(first, first + count):
        started = time.perf_counter()
        answer = await ping(svc, built, f"+1303555{n:04d}")
        took.append(time.perf_counter() - started)
        assert answer["status"] == "reserved"
    return took


async def test_a_hanging_receiver_does_not_slow_pings(
    svc: Service, receiver: tuple[Receiver, str]
) -> None:
    server, base = receiver
    built = await build_campaign(svc.runtime.sessions)
    webhook = await create_webhook(svc, built, url=f"{base}/ok?r=[uuid]", method="GET")
    await timed_pings(svc, built, 0, 5)  # warm up: configuration cached, connections open
    await eventually(lambda: len(server.seen) == 5)

    healthy = await timed_pings(svc, built, 100, 50)
    await eventually(lambda: len(server.seen) == 55)
    patched = await svc.client.patch(
        f"{API}/webhooks/{webhook['id']}", json={"url": f"{base}/hang"}, headers=auth(built.token)
    )
    assert patched.status_code == 200, patched.text
    hanging = await timed_pings(svc, built, 200, 50)
    await eventually(lambda: server.paths().count("/hang") >= 10)

    # Were a ping to wait for its pixel it would take the pixel's whole timeout (2 s).
    assert statistics.median(hanging) < max(0.5, 5 * statistics.median(healthy)), hanging
    assert max(hanging) < PIXEL_TIMEOUT, hanging
    pending = await deliveries(svc, built, webhook["id"])
    assert sum(d["status"] == "pending" for d in pending) == 50


async def test_admin_api_validates_pixels_and_scopes_them_to_the_company(
    svc: Service,
) -> None:
    built = await build_campaign(svc.runtime.sessions)
    _, other_token = await create_company(svc.runtime.sessions, "Bravo")
    mine, theirs = auth(built.token), auth(other_token)
    url = "https://pixels.example.com/p?c=[caller_number]"
    bad = [
        ({"url": "ftp://pixels.example.com/p"}, "url"),
        ({"url": "https:///nohost"}, "url"),
        ({"method": "TRACE"}, "method"),
        ({"event": "ringing"}, "event"),
        ({"headers": {"X-A": "a\r\nb"}}, "headers"),
        ({"headers": {"Host": "evil.example.com"}}, "headers"),
        ({"headers": {"Bad Name": "x"}}, "headers"),
        ({"body": '{"c": "[caller_number]"'}, "body"),
        ({"content_type": "not a type"}, "content_type"),
        ({"conditions": [{"tag": "x", "op": "equals"}]}, "conditions"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"campaign_id": 0}, "campaign_id"),
    ]
    base_body = {"campaign_id": built.campaign_id, "event": "reserved", "url": url}
    created = await create_webhook(svc, built, url=url, body='{"c": "[caller_number]"}')
    path = f"{API}/webhooks/{created['id']}"
    for change, field in bad:
        answer = await svc.client.post(f"{API}/webhooks", json=base_body | change, headers=mine)
        assert answer.status_code == 422, (change, answer.text)
        assert field in answer.json()["info"], (change, answer.text)
        patched = await svc.client.patch(path, json=change, headers=mine)
        assert patched.status_code == 422, (change, patched.text)
        assert field in patched.json()["info"], (change, patched.text)

    # The body is checked against the content type it will be sent with.
    as_text = {"content_type": "text/plain", "body": "c=[caller_number]"}
    assert (await svc.client.patch(path, json=as_text, headers=mine)).status_code == 200
    back = await svc.client.patch(path, json={"content_type": "application/json"}, headers=mine)
    assert back.status_code == 422
    assert "body" in back.json()["info"]

    for method, suffix in (("GET", ""), ("PATCH", ""), ("GET", "/deliveries"), ("DELETE", "")):
        kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "PATCH" else {}
        other = await svc.client.request(method, path + suffix, headers=theirs, **kwargs)
        assert other.status_code == 404, (method, suffix)
    stolen = await svc.client.post(f"{API}/webhooks", json=base_body, headers=theirs)
    assert stolen.status_code == 404
    assert (await svc.client.get(f"{API}/webhooks", headers=theirs)).json() == []

    listed = await svc.client.get(
        f"{API}/webhooks", params={"campaign_id": built.campaign_id, "event": "reserved"}
    )
    assert listed.status_code == 401
    found = await svc.client.get(
        f"{API}/webhooks", params={"campaign_id": built.campaign_id}, headers=mine
    )
    assert [w["id"] for w in found.json()] == [created["id"]]
    none = await svc.client.get(f"{API}/webhooks", params={"event": "expired"}, headers=mine)
    assert none.json() == []


async def test_deleting_a_pixel_gives_up_its_pending_deliveries(svc: Service) -> None:
    built = await build_campaign(svc.runtime.sessions)
    webhook = await create_webhook(svc, built, url="https://pixels.example.com/p")
    later = svc.clock.now.replace(year=svc.clock.now.year + 1)
    async with svc.runtime.sessions.begin() as session:
        session.add(
            t.WebhookDelivery(
                id="d-1",
                company_id=built.company_id,
                webhook_id=webhook["id"],
                event="reserved",
                method="POST",
                url="https://pixels.example.com/p",
                next_attempt_at=later,
                created_at=svc.clock.now,
            )
        )
    pending = await deliveries(svc, built, webhook["id"])
    assert [(d["id"], d["status"], d["attempt_log"]) for d in pending] == [("d-1", "pending", [])]

    deleted = await svc.client.delete(f"{API}/webhooks/{webhook['id']}", headers=auth(built.token))

    assert deleted.status_code == 204
    async with svc.runtime.sessions() as session:
        row = await session.get(t.WebhookDelivery, "d-1")
    assert row is not None
    assert (row.status, row.last_error) == ("failed", "webhook deleted")


async def test_openapi_documents_the_pixels(svc: Service) -> None:
    spec = (await svc.client.get("/openapi.json")).json()
    for path in ("/webhooks", "/webhooks/{webhook_id}", "/webhooks/{webhook_id}/deliveries"):
        for operation in spec["paths"][API + path].values():
            assert operation["summary"], path
    schemas = spec["components"]["schemas"]
    assert "[token]" in schemas["WebhookCreate"]["description"]
    assert schemas["WebhookCreate"]["additionalProperties"] is False
    assert "attempt_log" in schemas["DeliveryOut"]["properties"]


async def test_pings_without_pixels_queue_nothing(svc: Service) -> None:
    built = await build_campaign(svc.runtime.sessions)
    await ping(svc, built, "+13035551234")
    async with svc.runtime.sessions() as session:
        assert (await session.scalars(select(t.WebhookDelivery))).all() == []


async def test_call_pixels_fire_and_a_hanging_receiver_does_not_slow_calls(
    svc: Service, receiver: tuple[Receiver, str]
) -> None:
    server, base = receiver
    built = await build_campaign(svc.runtime.sessions, criteria=CRITERIA, carrier_token=TOKEN)
    for event in ("call_started", "answered", "converted"):
        await create_webhook(
            svc, built, event=event, url=f"{base}/hang?e={event}&c=[call_uuid]&p=[payout]"
        )
    carrier = Carrier(svc)
    took = []
    for n in range(10):
        answer = await ping(svc, built, f"+1303556{n:04d}")
        started = time.perf_counter()
        await carrier.talk(new_sid(), f"+1303556{n:04d}", answer["inbound_number"], 120)
        took.append(time.perf_counter() - started)

    # A whole call is four webhooks; waiting for one hanging pixel would cost 2 s.
    assert max(took) < PIXEL_TIMEOUT, took
    await eventually(lambda: server.paths().count("/hang") >= 30)
    converted = [r for r in server.seen if r.query.get("e") == "converted"]
    assert converted
    assert {r.query["p"] for r in converted} == {"12.50"}
    assert all(len(r.query["c"]) == 36 for r in server.seen)
