"""A new owner sets a campaign up from the console alone, in headless Chromium: campaign,
tracking number, two targets with hours and a concurrency cap of 1, a publisher and the
criterion paying it, an RTB key with a 15 s TTL; copies the publisher's link from the link
builder and pings it as a publisher would (outside the browser). A viewer changes nothing."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

from tests.browser.test_console_browser import browser, shot, sign_in
from tests.e2e.test_simulate import Served, callbid, last_json, served

__all__ = ["browser", "served"]

CALLERS = ("+13125550181", "+13125550182", "+13125550183")


def submit(page: Any, fields: dict[str, str], *, checks: tuple[str, ...] = ()) -> None:
    for label, value in fields.items():
        control = page.get_by_label(label, exact=True)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    for label in checks:
        page.get_by_label(label, exact=True).check()
    page.locator("form.config button[type=submit]").click()


def add_target(page: Any, overview: str, name: str, destination: str) -> None:
    page.goto(overview)
    page.get_by_role("link", name="Add a target").click()
    submit(
        page,
        {
            "Name": name,
            "Destination": destination,
            "Time zone": "America/Chicago",
            "Hours": "every day 00:00-24:00",
            "Concurrent calls at most": "1",
        },
    )
    page.wait_for_url(overview)


def test_a_new_owner_sets_up_a_campaign_and_a_publisher_pings_its_link(
    served: Served, browser: Any
) -> None:
    company = last_json(callbid(served, "company", "Windy City Leads"))
    owner = last_json(
        callbid(
            served,
            "user",
            "add",
            "--company",
            str(company["company_id"]),
            "--email",
            "owner@windy.example",
        )
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
    page = context.new_page()
    sign_in(page, served.url, owner["email"], owner["password"])

    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    submit(page, {"Name": "Chicago roofing"})
    page.wait_for_url(re.compile(r".*/console/campaigns/\d+$"))
    overview = page.url

    page.get_by_role("link", name="Add a tracking number").click()
    submit(page, {"Number": "+18885550177"})
    page.wait_for_url(overview)

    page.get_by_role("link", name="Add a target").click()
    submit(
        page,
        {"Name": "Alpha Roofing", "Destination": "not a number", "Time zone": "America/Chicago"},
    )
    error = page.locator("#e-destination")
    error.wait_for()
    assert error.inner_text().strip()  # the API's words, next to the field
    assert page.get_by_label("Name", exact=True).input_value() == "Alpha Roofing"  # kept
    shot(page, "form-error")
    add_target(page, overview, "Alpha Roofing", "+13125550101")
    add_target(page, overview, "Bravo Roofing", "+13125550102")

    page.get_by_role("link", name="Add a publisher").click()
    submit(page, {"Publisher id": "pub-7", "Name": "Lead Gen 7"})
    page.wait_for_url(overview)
    warnings = page.locator("#warnings")
    assert "publisher pub-7" in warnings.inner_text()
    shot(page, "overview-warning")

    page.get_by_role("link", name="Add a criterion").click()
    submit(
        page,
        {
            "Name": "pub-7 after 60 s",
            "Publisher id": "pub-7",
            "Payout to the publisher": "9.5",
            "Converts after (connected seconds)": "60",
        },
    )
    page.wait_for_url(overview)
    assert page.locator("#warnings").count() == 0

    page.get_by_role("link", name="Add an RTB key").click()
    submit(
        page,
        {"Name": "Roofing key", "TTL (seconds a reservation holds)": "15"},
        checks=("Count against caps when reserved",),
    )
    page.wait_for_url(overview)
    shot(page, "overview-setup")

    page.get_by_role("link", name="Build a publisher's link").click()
    page.get_by_label("Publisher id").fill("pub-7")
    page.get_by_role("button", name="Build the links").click()
    page.locator("button.copy[data-copy=rtb-link]").click()
    link = page.evaluate("navigator.clipboard.readText()")
    assert "publisher_id=pub-7&caller_number=[caller_number]" in link
    shot(page, "link-builder-owner")

    answers = [
        httpx.post(link.replace("[caller_number]", quote(caller)), timeout=10).json()
        for caller in CALLERS
    ]
    assert [a["status"] for a in answers] == ["reserved", "reserved", "no-target"]
    assert answers[0]["retreaver_payout"] == answers[1]["retreaver_payout"] == 9.5
    assert answers[0]["inbound_number"] == "+18885550177"

    chosen = []
    for answer in answers[:2]:
        page.goto(f"{served.url}/call_reservations/{answer['uuid']}")
        chosen.append(page.locator("#decision-log tr.outcome-selected td").nth(1).inner_text())
    assert sorted(chosen) == ["Alpha Roofing", "Bravo Roofing"]  # the second got the other
    page.goto(f"{served.url}/call_reservations/{answers[2]['uuid']}")
    rows = page.locator("#decision-log tbody tr")
    assert rows.count() == 2
    for i in range(2):
        assert "limit on concurrent calls is reached" in rows.nth(i).inner_text()
    shot(page, "lookup-capped")

    viewer = last_json(
        callbid(
            served,
            "user",
            "add",
            "--company",
            str(company["company_id"]),
            "--email",
            "viewer@windy.example",
            "--role",
            "viewer",
        )
    )
    watcher = browser.new_context().new_page()
    sign_in(watcher, served.url, viewer["email"], viewer["password"])
    watcher.goto(overview)
    assert watcher.get_by_role("link", name="Add a target").count() == 0
    assert watcher.locator("form.config").count() == 0
    status = watcher.evaluate(
        """async (path) => {
            const page = await (await fetch('/console/rtb')).text();
            const token = page.match(/name="csrf_token" value="([^"]+)"/)[1];
            const answer = await fetch(path + '/targets/new', {method: 'POST',
                body: new URLSearchParams({csrf_token: token, name: 'x', destination: '+1'})});
            return answer.status;
        }""",
        overview.removeprefix(served.url),
    )
    assert status == 403
