"""RTB records older than the retention period are purged; recent ones stay."""

from __future__ import annotations

from typing import Any

from callbid.service.maintenance import purge_once, sweep_once
from tests.builders import build_campaign
from tests.conftest import Service


async def lookup(svc: Service, token: str, uuid: str) -> int:
    response = await svc.client.get(
        f"/call_reservations/{uuid}", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code


async def ping(svc: Service, key: str, caller: str) -> Any:
    params = {"key": key, "publisher_id": "p", "caller_number": caller}
    return (await svc.client.post("/rtbs.json", params=params)).json()


async def test_purge_removes_only_records_past_retention(make_service: Any) -> None:
    async with make_service(retention_hours=24) as svc:
        built = await build_campaign(svc.runtime.sessions)
        old = await ping(svc, built.key, "+12125550101")
        svc.clock.advance(23 * 3600)
        recent = await ping(svc, built.key, "+12125550102")
        svc.clock.advance(3600 + 1)
        deleted = await purge_once(svc.runtime)
        assert deleted == 1
        assert await lookup(svc, built.token, old["uuid"]) == 404
        assert await lookup(svc, built.token, recent["uuid"]) == 200


async def test_sweeper_marks_expired_reservations(make_service: Any) -> None:
    async with make_service() as svc:
        built = await build_campaign(svc.runtime.sessions)
        first = await ping(svc, built.key, "+12125550101")
        svc.clock.advance(20)
        await sweep_once(svc.runtime)
        response = await svc.client.get(
            f"/call_reservations/{first['uuid']}",
            headers={"Authorization": f"Bearer {built.token}"},
        )
        assert response.json()["stored_status"] == "expired"
