"""The owner console through HTTP: sign-in, sessions, CSRF, throttling, tenant scope, the
look-up page by content negotiation, the logs' keyset pages and live rows, and reports."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any

import httpx
import pytest

from callbid.service.users import FREE_ATTEMPTS, add_user
from tests.builders import build_campaign
from tests.conftest import Service

CALLER = "+12125550123"
DEMO_TARGETS = (
    "Acme Insurance (New York office)",
    "Beacon Health (night line)",
    "Round-the-clock call center",
)
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/console/login")
    assert page.status_code == 200
    return await client.post(
        "/console/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": "/console/rtb",
        },
    )


async def demo_ping(svc: Service, demo: dict[str, Any], caller: str = CALLER) -> dict[str, Any]:
    response = await svc.client.post(
        "/rtbs.json",
        params={
            "key": demo["key"],
            "publisher_id": demo["publisher_id"],
            "caller_number": caller,
            "caller_state": "NY",
            "caller_zip": "10001",
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def demo_service(make_service: Any) -> Any:
    async with make_service(seed_demo=True) as svc:
        yield svc


async def test_a_browser_is_sent_to_sign_in_and_back(demo_service: Service) -> None:
    svc = demo_service
    demo = await svc.demo()
    uuid = (await demo_ping(svc, demo))["uuid"]

    refused = await svc.client.get(f"/call_reservations/{uuid}", headers=HTML)
    assert refused.status_code == 303
    assert refused.headers["location"] == f"/console/login?next=%2Fcall_reservations%2F{uuid}"
    assert uuid not in refused.text
    assert "Acme" not in refused.text

    signed = await sign_in(svc.client, demo["email"], demo["password"])
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/rtb"
    cookie = signed.headers["set-cookie"]
    assert "callbid_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie

    log = await svc.client.get("/console/rtb")
    assert log.status_code == 200
    assert uuid in log.text
    page = await svc.client.get(f"/call_reservations/{uuid}", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert uuid in page.text
    for name in DEMO_TARGETS:
        assert name in page.text


async def test_the_look_up_answers_html_to_the_admin_token_and_json_unchanged(
    demo_service: Service,
) -> None:
    svc = demo_service
    demo = await svc.demo()
    uuid = (await demo_ping(svc, demo))["uuid"]
    bearer = {"Authorization": f"Bearer {demo['admin_token']}"}

    page = await svc.client.get(f"/call_reservations/{uuid}", headers=HTML | bearer)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert uuid in page.text
    assert all(name in page.text for name in DEMO_TARGETS)
    assert "Closed: outside its hours of operation" in page.text  # Beacon at 10:00 Chicago

    plain = await svc.client.get(f"/call_reservations/{uuid}", headers=bearer)
    as_json = await svc.client.get(
        f"/call_reservations/{uuid}", headers=bearer | {"Accept": "application/json"}
    )
    assert plain.headers["content-type"] == as_json.headers["content-type"] == "application/json"
    assert as_json.json() == plain.json()
    assert plain.json()["uuid"] == uuid
    unauthenticated = await svc.client.get(f"/call_reservations/{uuid}")
    assert unauthenticated.status_code == 401


async def test_another_companys_request_is_not_found(demo_service: Service) -> None:
    svc = demo_service
    demo = await svc.demo()
    uuid = (await demo_ping(svc, demo))["uuid"]
    other = await build_campaign(svc.runtime.sessions)
    async with svc.runtime.sessions.begin() as session:
        await add_user(session, other.company_id, "rival@other.example", "a long password")
    assert (await sign_in(svc.client, "rival@other.example", "a long password")).status_code == 303

    page = await svc.client.get(f"/call_reservations/{uuid}", headers=HTML)
    assert page.status_code == 404
    assert "Acme" not in page.text
    assert "reservation not found" in page.text
    log = await svc.client.get("/console/rtb")
    assert uuid not in log.text


async def test_a_form_without_its_csrf_token_is_refused(demo_service: Service) -> None:
    svc = demo_service
    demo = await svc.demo()
    await sign_in(svc.client, demo["email"], demo["password"])
    page = await svc.client.get("/console/rtb")

    forged = await svc.client.post("/console/logout", data={})
    assert forged.status_code == 403
    assert "CSRF token missing or invalid" in forged.text
    assert (await svc.client.get("/console/rtb")).status_code == 200  # still signed in

    done = await svc.client.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 303
    svc.client.cookies.clear()
    assert (await svc.client.get("/console/rtb")).status_code == 303


async def test_a_stolen_session_cookie_stops_working_after_sign_out(
    demo_service: Service,
) -> None:
    svc = demo_service
    demo = await svc.demo()
    await sign_in(svc.client, demo["email"], demo["password"])
    cookie = svc.client.cookies["callbid_session"]
    page = await svc.client.get("/console/rtb")
    await svc.client.post("/console/logout", data={"csrf_token": csrf_of(page.text)})

    svc.client.cookies.set("callbid_session", cookie)
    assert (await svc.client.get("/console/rtb")).status_code == 303
    svc.client.cookies.set("callbid_session", cookie + "x")
    assert (await svc.client.get("/console/rtb")).status_code == 303


async def test_the_sign_in_form_needs_its_token(demo_service: Service) -> None:
    svc = demo_service
    demo = await svc.demo()
    response = await svc.client.post(
        "/console/login", data={"email": demo["email"], "password": demo["password"]}
    )
    assert response.status_code == 403
    assert "callbid_session" not in response.headers.get("set-cookie", "")


async def test_wrong_passwords_slow_down_and_are_logged_without_the_password(
    demo_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    svc = demo_service
    demo = await svc.demo()
    for _ in range(FREE_ATTEMPTS):
        wrong = await sign_in(svc.client, demo["email"], "not-the-password-123")
        assert wrong.status_code == 401
        assert "wrong email or password" in wrong.text
    throttled = await sign_in(svc.client, demo["email"], demo["password"])
    assert throttled.status_code == 429
    assert "try again in" in throttled.text
    assert throttled.headers["retry-after"] == "1"
    svc.clock.advance(1.5)
    assert (await sign_in(svc.client, demo["email"], demo["password"])).status_code == 303
    failures = [r for r in caplog.records if r.getMessage() == "console.sign_in_failed"]
    assert len(failures) == FREE_ATTEMPTS
    assert all("not-the-password-123" not in str(r.__dict__) for r in caplog.records)


async def test_the_rtb_log_pages_by_keyset_and_serves_new_rows(demo_service: Service) -> None:
    svc = demo_service
    demo = await svc.demo()
    sent = []
    for i in range(60):
        svc.clock.advance(0.5 if i % 3 else 0)  # some pings share a timestamp
        sent.append((await demo_ping(svc, demo, caller=f"+1212555{1000 + i}"))["uuid"])
    await sign_in(svc.client, demo["email"], demo["password"])

    first = await svc.client.get("/console/rtb")
    shown = re.findall(r'<tr data-cursor="[^"]*~([0-9a-f-]{36})"', first.text)
    assert len(shown) == 50
    older = re.search(r'href="/console/rtb\?before=([^"]+)"', first.text)
    assert older is not None
    second = await svc.client.get(f"/console/rtb?before={older.group(1)}")
    rest = re.findall(r'<tr data-cursor="[^"]*~([0-9a-f-]{36})"', second.text)
    assert shown + rest == list(reversed(sent))
    assert "data-live" not in second.text  # an older page does not grow

    newest = re.search(r'data-newest="([^"]+)"', first.text)
    assert newest is not None
    quiet = await svc.client.get("/console/rtb/rows", params={"after": newest.group(1)})
    assert quiet.status_code == 200
    assert "<tr" not in quiet.text
    fresh = (await demo_ping(svc, demo, caller="+12125559999"))["uuid"]
    live = await svc.client.get("/console/rtb/rows", params={"after": newest.group(1)})
    assert re.findall(r'~([0-9a-f-]{36})"', live.text) == [fresh]

    by_caller = await svc.client.get("/console/rtb", params={"caller": "(212) 555-1003"})
    assert re.findall(r'<tr data-cursor="[^"]*~([0-9a-f-]{36})"', by_caller.text) == [sent[3]]
    bad = await svc.client.get("/console/rtb", params={"status": "nope"})
    assert bad.status_code == 400
    assert "status: one of" in bad.text
    bad_cursor = await svc.client.get("/console/rtb", params={"before": "yesterday"})
    assert bad_cursor.status_code == 400


async def test_reports_draw_charts_and_download_csv(demo_service: Service) -> None:
    svc = demo_service
    demo = await svc.demo()
    for i in range(3):
        await demo_ping(svc, demo, caller=f"+1212555{2000 + i}")
    await sign_in(svc.client, demo["email"], demo["password"])

    page = await svc.client.get("/console/reports")
    assert page.status_code == 200
    assert page.text.count("<svg") == 3
    assert "<polyline" in page.text
    day = svc.clock.now.date().isoformat()
    by_day = await svc.client.get("/console/reports.csv", params={"by": "day"})
    assert by_day.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(by_day.text)))
    assert [(r["day"], r["pings"]) for r in rows] == [(day, "3")]
    total = await svc.client.get("/console/reports.csv", params={"by": "total"})
    assert next(iter(csv.DictReader(io.StringIO(total.text))))["pings"] == "3"
    bad = await svc.client.get("/console/reports", params={"from": "soon"})
    assert bad.status_code == 400
    assert "from: expected a date" in bad.text


async def test_the_calls_log_lists_calls_and_their_flow(demo_service: Service) -> None:
    svc = demo_service
    demo = await svc.demo()
    reserved = await demo_ping(svc, demo)
    admin = {"Authorization": f"Bearer {demo['admin_token']}"}
    started = await svc.client.post(
        "/api/v1/calls",
        json={"call_id": "c-1", "from": CALLER, "to": reserved["inbound_number"]},
        headers=admin,
    )
    assert started.status_code == 200, started.text
    call_uuid = started.json()["call_uuid"]
    await sign_in(svc.client, demo["email"], demo["password"])

    log = await svc.client.get("/console/calls")
    assert re.findall(r'<tr data-cursor="[^"]*~([0-9a-f-]{36})"', log.text) == [call_uuid]
    newest = re.search(r'data-newest="([^"]+)"', log.text)
    assert newest is not None
    svc.clock.advance(1)
    second = await svc.client.post(
        "/api/v1/calls",
        json={"call_id": "c-2", "from": "+13125550111", "to": "+18885550101"},
        headers=admin,
    )
    live = await svc.client.get("/console/calls/rows", params={"after": newest.group(1)})
    assert re.findall(r'~([0-9a-f-]{36})"', live.text) == [second.json()["call_uuid"]]
    routing = await svc.client.get("/console/calls", params={"status": "converted"})
    assert "<tr data-cursor" not in routing.text

    page = await svc.client.get(f"/console/calls/{call_uuid}")
    assert page.status_code == 200
    assert reserved["uuid"] in page.text
    assert "call started" in page.text
    lookup = await svc.client.get(f"/call_reservations/{reserved['uuid']}", headers=HTML)
    assert f'href="/console/calls/{call_uuid}"' in lookup.text
    assert (await svc.client.get("/console/calls/not-a-call")).status_code == 404


async def test_the_session_cookie_is_secure_behind_an_https_public_url(make_service: Any) -> None:
    async with make_service(seed_demo=True, public_url="https://calls.example.com") as svc:
        demo = await svc.demo()
        form = await svc.client.get("/console/login")
        assert "Secure" in form.headers["set-cookie"]
        token = csrf_of(form.text)
        signed = await svc.client.post(
            "/console/login",
            data={"email": demo["email"], "password": demo["password"], "csrf_token": token},
            headers={"Cookie": f"callbid_sign_in={token}"},  # plain-HTTP test client
        )
        assert signed.status_code == 303
        assert "callbid_session=" in signed.headers["set-cookie"]
        assert "Secure" in signed.headers["set-cookie"]


async def test_the_look_up_page_shows_the_exact_answer_of_a_refused_ping(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions, targets=[{"paused": True}])
    answer = await service.client.post(
        "/rtbs.json", params={"key": built.key, "publisher_id": "p", "caller_number": CALLER}
    )
    body = answer.json()
    assert body["status"] == "no-target"
    assert body["reason_code"] == "no_buyer_open"

    page = await service.client.get(
        f"/call_reservations/{body['uuid']}",
        headers=HTML | {"Authorization": f"Bearer {built.token}"},
    )
    assert page.status_code == 200
    shown = re.search(r'<pre class="answer">(.*?)</pre>', page.text, re.S)
    assert shown is not None
    assert json.loads(html.unescape(shown.group(1))) == body
    assert "Paused by the owner" in page.text


async def test_the_replay_on_the_page_shows_a_changed_outcome_beside_the_old(
    demo_service: Service,
) -> None:
    svc = demo_service
    demo = await svc.demo()
    reserved = await demo_ping(svc, demo)
    before = (
        await svc.client.get(
            f"/call_reservations/{reserved['uuid']}",
            headers={"Authorization": f"Bearer {demo['admin_token']}"},
        )
    ).json()
    acme = next(r for r in before["decision_log"] if r["target_name"] == DEMO_TARGETS[0])
    assert acme["outcome"] == "selected"
    weekends = [{"days": [5, 6], "open": "09:00", "close": "17:00"}]
    changed = await svc.client.patch(
        f"/api/v1/targets/{acme['target_id']}",
        json={"hours": weekends},
        headers={"Authorization": f"Bearer {demo['admin_token']}"},
    )
    assert changed.status_code == 200, changed.text
    await sign_in(svc.client, demo["email"], demo["password"])
    page = await svc.client.get(f"/call_reservations/{reserved['uuid']}", headers=HTML)

    forged = await svc.client.post(f"/console/reservations/{reserved['uuid']}/replay", data={})
    assert forged.status_code == 403
    replayed = await svc.client.post(
        f"/console/reservations/{reserved['uuid']}/replay", data={"csrf_token": csrf_of(page.text)}
    )
    assert replayed.status_code == 200
    row = re.search(r'<tr class="changed">\s*<td>([^<]+)</td>(.*?)</tr>', replayed.text, re.S)
    assert row is not None
    assert row.group(1) == DEMO_TARGETS[0]
    then, now = re.findall(r'<span class="mono">([^<]*)</span>', row.group(2))
    assert (then, now) == ("selected", "closed")
    after = (
        await svc.client.get(
            f"/call_reservations/{reserved['uuid']}",
            headers={"Authorization": f"Bearer {demo['admin_token']}"},
        )
    ).json()
    assert after == before  # the replay wrote nothing


async def test_a_disabled_or_reset_user_is_signed_out_at_once(demo_service: Service) -> None:
    from callbid.service.users import reset_password, set_disabled

    svc = demo_service
    demo = await svc.demo()
    await sign_in(svc.client, demo["email"], demo["password"])
    async with svc.runtime.sessions.begin() as session:
        await set_disabled(session, demo["email"], True)
    assert (await svc.client.get("/console/rtb")).status_code == 303
    assert (await sign_in(svc.client, demo["email"], demo["password"])).status_code == 401

    async with svc.runtime.sessions.begin() as session:
        await set_disabled(session, demo["email"], False)
    assert (await sign_in(svc.client, demo["email"], demo["password"])).status_code == 303
    async with svc.runtime.sessions.begin() as session:
        await reset_password(session, demo["email"], "a brand new password")
    assert (await svc.client.get("/console/rtb")).status_code == 303
    assert (await sign_in(svc.client, demo["email"], "a brand new password")).status_code == 303
