"""The legacy Call Reservation API and the owner look-up, through HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import build_campaign
from tests.conftest import Service


@pytest.fixture
def service(any_service: Service) -> Service:
    """Every test here runs on SQLite with the in-process store and on PostgreSQL with Redis."""
    return any_service


CALLER = "+12125550177"
LEGACY_KEYS = {
    "uuid",
    "inbound_number",
    "caller_number",
    "status",
    "expires_at",
    "claimed_at",
    "wiped_at",
    "call",
    "matched_targets",
    "tag_values",
    "conversion_groups",
}
CALL_KEYS = {
    "uuid",
    "formatted_caller_number",
    "status",
    "start_time",
    "end_time",
    "caller_number",
    "target_id",
    "winning_leg_connected_at",
    "winning_leg_disconnected_at",
}


async def legacy(svc: Service, key: str, **params: Any) -> Any:
    response = await svc.client.post(
        "/call_reservations.json", params={"key": key, "publisher_id": "4321ABCD", **params}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_legacy_reserved_shape(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        criteria=[{"publisher_id": "4321ABCD", "payout": 7.5, "buffer_seconds": 60}],
    )
    body = await legacy(service, built.key, caller_number="212-555-0177", caller_zip="10001")
    reservation = body["call_reservation"]
    assert set(body) == {"call_reservation"}
    assert set(reservation) == LEGACY_KEYS
    assert set(reservation["call"]) == CALL_KEYS
    assert reservation["status"] == "reserved"
    assert reservation["caller_number"] == "+12125550177"
    assert reservation["inbound_number"] == int(built.numbers[0][1:])
    assert reservation["expires_at"].endswith("Z")
    assert reservation["call"]["formatted_caller_number"] == "(212) 555-0177"
    assert reservation["call"]["target_id"] == built.target_ids[0]
    assert reservation["matched_targets"] == [{"id": built.target_ids[0]}]
    assert reservation["conversion_groups"][0]["payout"] == 7.5
    tags = {entry["key"]: entry["value"] for entry in reservation["tag_values"]}
    assert tags["caller_state"] == "NY"
    assert tags["publisher_id"] == "4321ABCD"


async def test_legacy_no_target_shape(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions, targets=[{"paused": True}])
    reservation = (await legacy(service, built.key, caller_number=CALLER))["call_reservation"]
    assert set(reservation) == LEGACY_KEYS | {"reason_code"}
    assert reservation["reason_code"] == "no_buyer_open"
    assert reservation["status"] == "no-target"
    assert reservation["inbound_number"] is None
    assert reservation["expires_at"] is None
    assert reservation["matched_targets"] == []
    assert reservation["call"]["status"] == "no-target"


async def test_legacy_errors_use_the_failed_shape(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    response = await service.client.post(
        "/call_reservations.json", params={"key": built.key, "publisher_id": "p"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "status": "failed",
        "info": "FAILED must include caller_number (string)",
    }


async def test_legacy_and_rtb_share_the_ping_shield(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    first = (await legacy(service, built.key, caller_number=CALLER))["call_reservation"]
    again = await service.client.post(
        "/rtbs.json", params={"key": built.key, "publisher_id": "4321ABCD", "caller_number": CALLER}
    )
    assert again.json()["uuid"] == first["uuid"]
    assert again.json()["retreaver_ping_shield"] is True


async def test_owner_lookup_needs_the_owners_token(service: Service) -> None:
    mine = await build_campaign(service.runtime.sessions)
    theirs = await build_campaign(service.runtime.sessions)
    ping = await service.client.post(
        "/rtbs.json", params={"key": mine.key, "publisher_id": "p", "caller_number": CALLER}
    )
    uuid = ping.json()["uuid"]
    url = f"/call_reservations/{uuid}"
    assert (await service.client.get(url)).status_code == 401
    bad = await service.client.get(url, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    other = await service.client.get(url, headers={"Authorization": f"Bearer {theirs.token}"})
    assert other.status_code == 404
    assert other.json()["status"] == "failed"
    missing = await service.client.get(
        "/call_reservations/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": f"Bearer {mine.token}"},
    )
    assert missing.status_code == 404
    own = await service.client.get(url, headers={"Authorization": f"Bearer {mine.token}"})
    assert own.status_code == 200
    body = own.json()
    assert body["uuid"] == uuid
    assert body["decision_log"] == [
        {
            "position": 0,
            "target_id": mine.target_ids[0],
            "target_name": "target0",
            "outcome": "selected",
        }
    ]
    assert body["tags"]["caller_number"] == CALLER


async def test_owner_sees_the_reasons_publishers_do_not(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        targets=[
            {"name": "Night Buyer", "hours": [{"days": [0], "open": "01:00", "close": "02:00"}]},
            {"name": "Capped Buyer", "daily_cap": 0},
            {
                "name": "Choosy Buyer",
                "filters": [{"tag": "age", "op": "greater_than", "values": ["64"]}],
            },
        ],
    )
    ping = await service.client.post(
        "/rtbs.json",
        params={"key": built.key, "publisher_id": "p", "caller_number": CALLER, "age": "40"},
    )
    body = ping.json()
    assert body == {"uuid": body["uuid"], "status": "no-target", "reason_code": "capped"}
    assert "Buyer" not in ping.text
    owner = await service.client.get(
        f"/call_reservations/{body['uuid']}", headers={"Authorization": f"Bearer {built.token}"}
    )
    outcomes = {row["target_name"]: row["outcome"] for row in owner.json()["decision_log"]}
    assert outcomes == {
        "Night Buyer": "closed",
        "Capped Buyer": "capped:daily",
        "Choosy Buyer": "filtered:age greater_than 64",
    }


async def test_a_legacy_get_reserves_as_a_post_does_and_is_shielded(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    params = {"key": built.key, "publisher_id": "4321ABCD", "caller_number": CALLER}

    got = await service.client.get("/call_reservations.json", params=params)
    again = await service.client.get("/call_reservations.json", params=params)

    assert got.status_code == again.status_code == 200
    first = got.json()["call_reservation"]
    assert set(first) == LEGACY_KEYS
    assert first["status"] == "reserved"
    assert again.json()["call_reservation"]["uuid"] == first["uuid"]
    posted = await legacy(service, built.key, caller_number=CALLER)
    assert posted == again.json()
