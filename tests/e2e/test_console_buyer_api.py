"""A target's buyer API page: a test ping shows the request, the answer and what it means
(nothing reserved); saving stores it as the API would; a bad URL says so next to the field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from callbid.adapters.storage.tables import Reservation
from tests.e2e.test_buyer_pings import LOOPBACK, buyers
from tests.e2e.test_console import csrf_of, sign_in
from tests.e2e.test_console_forms import field_error

__all__ = ["buyers"]


async def test_the_buyer_api_is_tried_then_saved(make_service: Any, buyers: str) -> None:
    async with make_service(seed_demo=True, buyer_allow_networks=LOOPBACK) as svc:
        demo = await svc.demo()
        admin = {"Authorization": f"Bearer {demo['admin_token']}"}
        await sign_in(svc.client, demo["email"], demo["password"])
        target_id = (await svc.client.get("/api/v1/targets", headers=admin)).json()[0]["id"]
        path = f"/console/targets/{target_id}/buyer-api?campaign={demo['campaign_id']}"
        page = await svc.client.get(path)
        assert page.status_code == 200
        form = {
            "csrf_token": csrf_of(page.text),
            "template": "custom",
            "url": f"{buyers}/rich",
            "method": "POST",
            "body": '{"caller": "[caller_number]", "zip": "[caller_zip]"}',
            "headers": "X-Api-Key: secret-1",
            "mapping_accepted": "accepted",
            "mapping_bid": "bid",
            "mapping_seconds": "seconds",
        }

        tried = await svc.client.post(path, data={**form, "action": "test"})
        assert tried.status_code == 200
        assert '<dd id="trial-accepted">yes</dd>' in tried.text
        assert '<dd id="trial-bid">$30.00</dd>' in tried.text
        assert "{&#34;caller&#34;: &#34;+12125550123&#34;, &#34;zip&#34;: &#34;10001&#34;}" in (
            tried.text
        )
        async with svc.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Reservation)) == 0
        stored = (await svc.client.get(f"/api/v1/targets/{target_id}", headers=admin)).json()
        assert stored["passthrough"] is None  # a test saves nothing

        saved = await svc.client.post(path, data={**form, "action": "save"})
        assert saved.status_code == 303
        stored = (await svc.client.get(f"/api/v1/targets/{target_id}", headers=admin)).json()
        assert stored["passthrough"]["url"] == f"{buyers}/rich"
        assert stored["passthrough"]["headers"] == {"X-Api-Key": "secret-1"}
        assert stored["passthrough"]["mapping"]["bid"] == "bid"

        api = await svc.client.patch(
            f"/api/v1/targets/{target_id}",
            json={"passthrough": {"url": "ftp://nope"}},
            headers=admin,
        )
        refused = await svc.client.post(path, data={**form, "url": "ftp://nope", "action": "save"})
        assert refused.status_code == 400
        assert api.json()["errors"][0]["msg"] in field_error(refused, "url")
