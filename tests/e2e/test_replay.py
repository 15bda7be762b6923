"""Replaying a past request on today's configuration, through HTTP: the owner changes a target
and asks whether the request would be taken now; nothing of the request or the hot state moves."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from redis.asyncio import Redis

from callbid.hotstate.memory import MemoryHotState
from tests.builders import Built, build_campaign
from tests.conftest import Service, owner_view


@pytest.fixture
def service(any_service: Service) -> Service:
    """Every test here runs on SQLite with the in-process store and on PostgreSQL with Redis."""
    return any_service


#: The fake clock says Monday 15:00 UTC: these hours are over.
MORNING_ONLY = [{"days": [0], "open": "09:00", "close": "10:00"}]


async def two_targets(svc: Service) -> Built:
    """Target A first, then B with room for one reservation; reservations hold capacity."""
    return await build_campaign(
        svc.runtime.sessions,
        targets=[
            {"name": "A", "priority": 1},
            {"name": "B", "priority": 2, "concurrency_cap": 1},
        ],
        key={"count_on_reserved": True},
        criteria=[{"payout": 7.5}],
    )


async def ping(svc: Service, built: Built, caller: str) -> dict[str, Any]:
    params = {"key": built.key, "publisher_id": "pub-1", "caller_number": caller, "age": "70"}
    response = await svc.client.post("/rtbs.json", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def target_of(svc: Service, built: Built, answer: dict[str, Any]) -> int | None:
    """The target a ping's answer was reserved on (the public answer does not name it)."""
    target_id: int | None = (await owner_view(svc, built, answer["uuid"]))["target_id"]
    return target_id


async def admin(svc: Service, built: Built, method: str, path: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {built.token}"}
    response = await svc.client.request(method, f"/api/v1{path}", headers=headers, **kw)
    assert response.status_code < 300, response.text
    return response.json()


async def replay(svc: Service, built: Built, uuid: str) -> dict[str, Any]:
    body: dict[str, Any] = await admin(svc, built, "POST", f"/reservations/{uuid}/replay")
    return body


async def hot_snapshot(svc: Service) -> Any:
    """Everything the hot state holds: the in-process store's tables, or every Redis key."""
    store = svc.runtime.store
    if isinstance(store, MemoryHotState):
        return copy.deepcopy(vars(store))
    assert svc.settings.redis_url is not None
    client = Redis.from_url(svc.settings.redis_url)
    try:
        return {key: await client.dump(key) async for key in client.scan_iter()}
    finally:
        await client.aclose()


def rows_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["target_name"]: row for row in body["rows"]}


async def test_a_closed_target_hands_the_replay_to_the_next(service: Service) -> None:
    built = await two_targets(service)
    a, b = built.target_ids
    first = await ping(service, built, "+13035550101")
    assert await target_of(service, built, first) == a
    await admin(service, built, "PATCH", f"/targets/{a}", json={"hours": MORNING_ONLY})
    stored, hot = await owner_view(service, built, first["uuid"]), await hot_snapshot(service)

    body = await replay(service, built, first["uuid"])

    assert body["uuid"] == first["uuid"]
    assert body["original"]["status"] == "reserved"
    assert body["original"]["target_id"] == a
    assert body["original"]["payout"] == 7.5
    assert body["now"]["status"] == "reserved"
    assert (body["now"]["target_id"], body["now"]["target_name"]) == (b, "B")
    assert body["now"]["payout"] == 7.5
    rows = rows_by_name(body)
    assert rows["A"] == {
        "target_id": a,
        "target_name": "A",
        "before": "selected",
        "after": "closed",
        "changed": True,
    }
    assert (rows["B"]["before"], rows["B"]["after"], rows["B"]["changed"]) == (
        "not_reached",
        "selected",
        True,
    )
    assert [entry["outcome"] for entry in body["decision_log"]] == ["closed", "selected"]
    # Nothing moved: the stored request, the hot state, and B's one slot.
    assert await owner_view(service, built, first["uuid"]) == stored
    assert await hot_snapshot(service) == hot
    again = await replay(service, built, first["uuid"])
    assert again == body
    second = await ping(service, built, "+13035550102")
    assert await target_of(service, built, second) == b
    third = await ping(service, built, "+13035550103")
    assert third["status"] == "no-target"


async def test_a_replay_sees_todays_caps(service: Service) -> None:
    built = await two_targets(service)
    a, b = built.target_ids
    first = await ping(service, built, "+13035550111")
    await admin(service, built, "PATCH", f"/targets/{a}", json={"paused": True})
    assert await target_of(service, built, await ping(service, built, "+13035550112")) == b

    body = await replay(service, built, first["uuid"])

    assert body["now"]["status"] == "no-target"
    assert body["now"]["reason_code"] == "capped"
    rows = rows_by_name(body)
    assert (rows["A"]["before"], rows["A"]["after"]) == ("selected", "paused")
    assert (rows["B"]["after"], rows["B"]["changed"]) == ("capped:concurrency", True)


async def test_an_unchanged_configuration_replays_the_same_answer(service: Service) -> None:
    built = await two_targets(service)
    first = await ping(service, built, "+13035550121")

    body = await replay(service, built, first["uuid"])

    assert body["now"]["target_id"] == await target_of(service, built, first)
    assert body["now"]["target_id"] == built.target_ids[0]
    assert not any(row["changed"] for row in body["rows"])


async def test_a_paused_key_is_the_replays_answer(service: Service) -> None:
    built = await two_targets(service)
    first = await ping(service, built, "+13035550131")
    await admin(service, built, "PATCH", f"/rtb-keys/{built.key}", json={"paused": True})

    body = await replay(service, built, first["uuid"])

    assert body["now"]["status"] == "rejected"
    assert body["now"]["info"] == "FAILED key is paused"
    assert body["decision_log"] == []
    assert {row["target_name"]: row["after"] for row in body["rows"]} == {"A": None, "B": None}


async def test_a_target_added_since_shows_only_after(service: Service) -> None:
    built = await two_targets(service)
    first = await ping(service, built, "+13035550141")
    new = await admin(
        service,
        built,
        "POST",
        "/targets",
        json={"name": "C", "destination": "+13125550100", "priority": 5},
    )
    campaign = await admin(service, built, "GET", f"/campaigns/{built.campaign_id}")
    ids = [*campaign["target_ids"], new["id"]]
    await admin(
        service, built, "PATCH", f"/campaigns/{built.campaign_id}", json={"target_ids": ids}
    )

    rows = rows_by_name(await replay(service, built, first["uuid"]))

    assert (rows["C"]["before"], rows["C"]["after"], rows["C"]["changed"]) == (
        None,
        "not_reached",
        True,
    )


async def test_another_companys_or_an_unknown_request_is_not_found(service: Service) -> None:
    mine = await two_targets(service)
    theirs = await two_targets(service)
    uuid = (await ping(service, mine, "+13035550151"))["uuid"]
    path = f"/api/v1/reservations/{uuid}/replay"

    assert (await service.client.post(path)).status_code == 401
    other = await service.client.post(path, headers={"Authorization": f"Bearer {theirs.token}"})
    assert other.status_code == 404
    unknown = await service.client.post(
        "/api/v1/reservations/00000000-0000-0000-0000-000000000000/replay",
        headers={"Authorization": f"Bearer {mine.token}"},
    )
    assert unknown.status_code == 404


async def test_the_replay_is_in_the_openapi_document(service: Service) -> None:
    spec = (await service.client.get("/openapi.json")).json()

    operation = spec["paths"]["/api/v1/reservations/{uuid}/replay"]["post"]

    assert operation["summary"]
    assert {"200", "401", "404"} <= set(operation["responses"])
