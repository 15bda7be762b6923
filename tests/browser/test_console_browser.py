"""The console in a real headless Chromium against a real `callbid serve`: sign in as the demo
owner, see a ping arrive in the RTB log, read each target's reason on its look-up page, follow
the call, replay it, see a chart; another company's user gets 404; a form without its CSRF
token is refused. Screenshots of each page go to `artifacts/screenshots/` (or
`CALLBID_SCREENSHOTS`), which CI keeps.

Chromium is Debian's `chromium` (or `CALLBID_CHROMIUM`); without it these tests skip, unless
`CALLBID_REQUIRE_BROWSER` is set (as `.ci/run` sets it), when they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_simulate import Served, callbid, last_json, served

__all__ = ["served"]

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(os.environ.get("CALLBID_SCREENSHOTS", "artifacts/screenshots"))
DEMO_TARGETS = (
    "Acme Insurance (New York office)",
    "Beacon Health (night line)",
    "Round-the-clock call center",
)
CALLER = "+12125550177"


def _chromium() -> str:
    found = os.environ.get("CALLBID_CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if found:
        return found
    message = "headless Chromium not found: apt-get install chromium (or set CALLBID_CHROMIUM)"
    if os.environ.get("CALLBID_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/console")
    assert "/console/login" in page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/rtb")


def ping(served: Served, demo: dict[str, Any]) -> dict[str, Any]:
    params = {
        "key": demo["key"],
        "publisher_id": demo["publisher_id"],
        "caller_number": CALLER,
        "caller_zip": "10001",
        "caller_state": "NY",
    }
    answer = httpx.post(f"{served.url}/rtbs.json", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == "reserved", body
    return body


def place_call(served: Served, demo: dict[str, Any], reserved: dict[str, Any]) -> None:
    """The call the publisher transfers, as a switch reports it: started, connected, ended
    after more than the demo's 90 s buffer."""
    admin = {"Authorization": f"Bearer {demo['admin_token']}"}
    calls = f"{served.url}/api/v1/calls"
    started = httpx.post(
        calls,
        json={"call_id": "br-1", "from": CALLER, "to": reserved["inbound_number"]},
        headers=admin,
    )
    assert started.status_code == 200, started.text
    for step, body in (("connected", {}), ("ended", {"connected_seconds": 120})):
        done = httpx.post(f"{calls}/br-1/{step}", json=body, headers=admin)
        assert done.status_code == 200, done.text


def test_the_owner_follows_a_ping_to_its_call_and_reports(served: Served, browser: Any) -> None:
    demo = last_json(callbid(served, "demo", "--json"))
    assert demo["console_url"] == f"{served.url}/console"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, served.url, demo["email"], demo["password"])

    reserved = ping(served, demo)
    uuid = reserved["uuid"]
    row = page.locator(f'#rtb-log tr[data-cursor$="{uuid}"]')
    row.wait_for(timeout=15_000)  # arrives without a reload
    shot(page, "rtb-log")

    row.get_by_role("link").first.click()
    page.wait_for_url(f"**/call_reservations/{uuid}")
    assert uuid in page.locator("h1").inner_text()
    for name in DEMO_TARGETS:
        cells = page.locator("#decision-log tbody tr", has_text=name).locator("td")
        assert cells.nth(2).inner_text().strip(), name  # its outcome
        assert len(cells.nth(3).inner_text().strip()) > 5, name  # the reason, in words
    shot(page, "lookup")

    page.get_by_role("button", name="Replay now").click()
    page.locator("#replay").wait_for()
    assert page.locator("#replay tbody tr").count() == len(DEMO_TARGETS)
    shot(page, "replay")

    place_call(served, demo, reserved)
    page.goto(f"{served.url}/call_reservations/{uuid}")
    page.locator("#call-link").click()
    page.wait_for_url("**/console/calls/*")
    assert page.locator("#call-flow tbody tr").count() >= 3
    assert page.locator("#conversion").inner_text().startswith("yes")
    shot(page, "call")

    page.goto(f"{served.url}/console/reports")
    page.locator("svg.chart polyline").first.wait_for()
    assert page.locator("#totals").inner_text().count("1") >= 1
    shot(page, "reports")

    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="Demo: auto insurance").click()
    page.locator("#targets tbody tr").first.wait_for()
    assert page.locator("#targets tbody tr").count() == len(DEMO_TARGETS)
    shot(page, "overview")
    page.get_by_role("link", name="Build a publisher's link").first.click()
    page.get_by_label("Publisher id").fill(demo["publisher_id"])
    page.get_by_label("Tags, one per line (name or name=value)").fill("caller_zip")
    page.get_by_role("button", name="Build the links").click()
    link = page.locator("#rtb-link").inner_text()
    assert link.startswith(f"{served.url}/rtbs.json?key={demo['key']}&publisher_id=")
    shot(page, "link-builder")

    phone = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(phone, served.url, demo["email"], demo["password"])
    phone.goto(f"{served.url}/call_reservations/{uuid}")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the look-up page is {width} px wide on a phone"
    shot(phone, "lookup-phone")


def test_tenants_and_csrf_in_the_browser(served: Served, browser: Any) -> None:
    demo = last_json(callbid(served, "demo", "--json"))
    uuid = ping(served, demo)["uuid"]
    rival = last_json(callbid(served, "company", "Rival Leads"))
    added = callbid(
        served,
        "user",
        "add",
        "--company",
        str(rival["company_id"]),
        "--email",
        "owner@rival.example",
        "--role",
        "viewer",
    )
    assert added.returncode == 0, added.stderr
    user = last_json(added)

    page = browser.new_context().new_page()
    sign_in(page, served.url, user["email"], user["password"])
    answer = page.goto(f"{served.url}/call_reservations/{uuid}")
    assert answer is not None
    assert answer.status == 404
    assert "Acme" not in page.content()
    shot(page, "other-company-404")

    forged = page.evaluate(
        """async () => (await fetch('/console/logout', {method: 'POST',
            body: new URLSearchParams({csrf_token: 'forged'})})).status"""
    )
    assert forged == 403
    page.goto(f"{served.url}/console/rtb")
    assert "/console/rtb" in page.url  # still signed in
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")
