"""POST /rtbs.json and /rtbs/{uuid}.json through HTTP: every status and every error."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.builders import Built, build_campaign
from tests.conftest import Service, owner_view


@pytest.fixture
def service(any_service: Service) -> Service:
    """Every test here runs on SQLite with the in-process store and on PostgreSQL with Redis."""
    return any_service


ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CALLER = "+12125550123"


async def ping(svc: Service, built: Built, caller: str | None = CALLER, **extra: Any) -> Any:
    params: dict[str, Any] = {"key": built.key, "publisher_id": "pub-1", **extra}
    if caller is not None:
        params["caller_number"] = caller
    return await svc.client.post("/rtbs.json", params=params)


async def test_demo_ping_is_reserved_in_the_documented_shape(make_service: Any) -> None:
    async with make_service(seed_demo=True) as service:
        await _check_demo_ping(service)


async def _check_demo_ping(service: Service) -> None:
    demo = await service.demo()
    response = await service.client.post(
        "/rtbs.json",
        params={"key": demo["key"], "publisher_id": demo["publisher_id"], "caller_number": CALLER},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {
        "uuid",
        "status",
        "retreaver_payout",
        "retreaver_seconds",
        "inbound_number",
        "expires_at",
    }
    assert body["status"] == "reserved"
    assert str(uuid.UUID(body["uuid"])) == body["uuid"]  # canonical, lower case
    assert uuid.UUID(body["uuid"]).version == 7  # time-ordered: appends to the key's index
    assert isinstance(body["retreaver_payout"], float)
    assert body["retreaver_payout"] == 12.5
    assert isinstance(body["retreaver_seconds"], int)
    assert body["retreaver_seconds"] == 90
    assert re.fullmatch(r"\+1\d{10}", body["inbound_number"])
    assert ISO_MS_Z.match(body["expires_at"])
    assert body["expires_at"] == "2026-11-23T15:00:15.000Z"


async def test_parameters_from_form_and_json_bodies(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    form = await service.client.post(
        "/rtbs.json",
        data={"key": built.key, "publisher_id": "p", "caller_number": "(212) 555-0124"},
    )
    assert form.json()["status"] == "reserved"
    as_json = await service.client.post(
        f"/rtbs.json?key={built.key}",
        json={"publisher_id": "p", "caller_number": 12125550125, "vip": True},
    )
    assert as_json.json()["status"] == "reserved"
    log = await owner_view(service, built, as_json.json()["uuid"])
    assert log["caller_number"] == "+12125550125"
    assert log["tags"]["vip"] == "true"


async def test_zip_derives_state_and_filters_use_it(service: Service) -> None:
    rule = [{"tag": "caller_state", "op": "equals", "values": ["CA"]}]
    built = await build_campaign(service.runtime.sessions, targets=[{"filters": rule}])
    ny = await ping(service, built, caller_zip="10001")
    assert ny.json() == {
        "uuid": ny.json()["uuid"],
        "status": "no-target",
        "reason_code": "filtered",
    }
    log = await owner_view(service, built, ny.json()["uuid"])
    assert log["tags"]["caller_state"] == "NY"
    assert log["decision_log"][0]["outcome"] == "filtered:caller_state equals CA"
    ca = await ping(service, built, caller="+13105550100", caller_zip="90210")
    assert ca.json()["status"] == "reserved"


async def test_no_target_explains_each_target_to_the_owner(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        targets=[
            {"paused": True},
            {"hours": [{"days": [0], "open": "01:00", "close": "02:00"}]},
            {"concurrency_cap": 0},
        ],
    )
    response = await ping(service, built)
    body = response.json()
    assert body == {"uuid": body["uuid"], "status": "no-target", "reason_code": "capped"}
    log = await owner_view(service, built, body["uuid"])
    assert [row["outcome"] for row in log["decision_log"]] == [
        "paused",
        "closed",
        "capped:concurrency",
    ]
    assert log["status"] == "no-target"


async def test_payout_zero_when_no_criterion_matches_the_publisher(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        criteria=[{"publisher_id": "someone-else", "payout": 9.0, "buffer_seconds": 60}],
    )
    body = (await ping(service, built)).json()
    assert body["status"] == "reserved"
    assert body["retreaver_payout"] == 0.0


async def test_rejections_carry_public_info_only(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        targets=[{"name": "Secret Buyer LLC"}],
        criteria=[{"payout_kind": "revshare", "payout": 50.0, "buffer_seconds": 60}],
    )
    body = (await ping(service, built)).json()
    assert body == {
        "uuid": body["uuid"],
        "status": "rejected",
        "info": "Unable to determine payout until the call converts",
        "reason_code": "payout_undeterminable",
    }
    assert "Secret" not in str(body)


async def test_suppressed_caller_is_rejected(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        caller_lists=[{"kind": "block", "numbers": [CALLER]}],
        campaign={"blocked_lists": [0]},
    )
    body = (await ping(service, built)).json()
    assert (body["status"], body["info"]) == ("rejected", "Caller suppressed")
    assert body["reason_code"] == "suppressed"


async def test_duplicate_caller_within_criterion_window_is_rejected(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        key={"ttl_seconds": 15},
        criteria=[{"payout": 5.0, "buffer_seconds": 30, "dedupe_seconds": 3600}],
    )
    assert (await ping(service, built)).json()["status"] == "reserved"
    service.clock.advance(60)
    body = (await ping(service, built)).json()
    assert (body["status"], body["info"]) == ("rejected", "Duplicate caller")
    assert body["reason_code"] == "duplicate_caller"
    service.clock.advance(3600)
    assert (await ping(service, built)).json()["status"] == "reserved"


async def test_ping_shield_returns_the_first_answer(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    first = (await ping(service, built)).json()
    service.clock.advance(5)
    second = (await ping(service, built, extra_tag="x")).json()
    assert second == {**first, "retreaver_ping_shield": True}
    service.clock.advance(11)
    third = (await ping(service, built)).json()
    assert third["uuid"] != first["uuid"]
    assert "retreaver_ping_shield" not in third


async def test_counting_on_reserved_holds_capacity_until_expiry(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions, targets=[{"concurrency_cap": 1}], key={"count_on_reserved": True}
    )
    assert (await ping(service, built, "+12125550001")).json()["status"] == "reserved"
    blocked = (await ping(service, built, "+12125550002")).json()
    assert blocked["status"] == "no-target"
    service.clock.advance(16)
    assert (await ping(service, built, "+12125550003")).json()["status"] == "reserved"


async def test_reservations_do_not_count_unless_the_key_says_so(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions, targets=[{"concurrency_cap": 1}])
    assert (await ping(service, built, "+12125550001")).json()["status"] == "reserved"
    assert (await ping(service, built, "+12125550002")).json()["status"] == "reserved"


async def test_confirm_counts_against_caps(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions, targets=[{"concurrency_cap": 1}])
    first = (await ping(service, built, "+12125550001")).json()
    second = (await ping(service, built, "+12125550002")).json()
    url = f"/rtbs/{first['uuid']}.json"
    confirmed = await service.client.put(url, params={"key": built.key, "status": "confirmed"})
    assert confirmed.status_code == 200
    assert confirmed.json() == {**first, "status": "confirmed"}
    again = await service.client.patch(url, data={"key": built.key, "status": "confirmed"})
    assert again.json()["status"] == "confirmed"
    refused = await service.client.put(
        f"/rtbs/{second['uuid']}.json", params={"key": built.key, "status": "confirmed"}
    )
    assert refused.json() == {
        "uuid": second["uuid"],
        "status": "no-target",
        "reason_code": "capped",
    }
    third = (await ping(service, built, "+12125550003")).json()
    assert third["status"] == "no-target"
    log = await owner_view(service, built, second["uuid"])
    assert log["status"] == "no-target"
    assert "capped at confirmation" in log["owner_info"]


async def test_confirm_needs_status_confirmed(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    first = (await ping(service, built)).json()
    response = await service.client.put(f"/rtbs/{first['uuid']}.json", params={"key": built.key})
    assert response.status_code == 400
    assert response.json() == {"status": "failed", "info": "FAILED status must be confirmed"}


async def test_read_shows_expiry(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    first = (await ping(service, built)).json()
    url = f"/rtbs/{first['uuid']}.json"
    assert (await service.client.get(url, params={"key": built.key})).json() == first
    service.clock.advance(15)
    expired = (await service.client.get(url, params={"key": built.key})).json()
    assert expired["status"] == "expired"
    late = await service.client.put(url, params={"key": built.key, "status": "confirmed"})
    assert late.status_code == 409


async def test_release_frees_capacity_at_once(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions, targets=[{"concurrency_cap": 1}], key={"count_on_reserved": True}
    )
    first = (await ping(service, built, "+12125550001")).json()
    assert (await ping(service, built, "+12125550002")).json()["status"] == "no-target"
    wiped = await service.client.delete(f"/rtbs/{first['uuid']}.json", params={"key": built.key})
    assert wiped.json() == {**first, "status": "wiped"}
    assert (await ping(service, built, "+12125550003")).json()["status"] == "reserved"
    log = await owner_view(service, built, first["uuid"])
    assert log["status"] == "wiped"
    assert log["wiped_at"] is not None


async def test_reservation_of_another_campaign_is_not_found(service: Service) -> None:
    mine = await build_campaign(service.runtime.sessions)
    theirs = await build_campaign(service.runtime.sessions)
    first = (await ping(service, mine)).json()
    response = await service.client.get(f"/rtbs/{first['uuid']}.json", params={"key": theirs.key})
    assert response.status_code == 404


async def test_pool_numbers_for_pings_without_caller(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        numbers=(),
        pool_numbers=("+18885550190", "+18885550191"),
        key={"allow_no_caller": True},
    )
    first = (await ping(service, built, caller=None)).json()
    second = (await ping(service, built, caller=None)).json()
    assert {first["inbound_number"], second["inbound_number"]} == set(built.pool_numbers)
    assert (await ping(service, built, caller=None)).json()["status"] == "no-target"
    service.clock.advance(15)
    assert (await ping(service, built, caller=None)).json()["status"] == "reserved"


async def test_inbound_number_parameter(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions, numbers=("+18885550100", "+18885550101"))
    chosen = await ping(service, built, inbound_number="888-555-0101")
    assert chosen.json()["inbound_number"] == "+18885550101"
    foreign = await ping(service, built, caller="+12125550999", inbound_number="+18885550177")
    assert foreign.status_code == 400
    assert "tracking number" in foreign.json()["info"]


async def test_group_caps_are_shared(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions,
        targets=[{}, {}],
        groups=[{"members": [0, 1], "concurrency_cap": 1}],
        key={"count_on_reserved": True},
    )
    assert (await ping(service, built, "+12125550001")).json()["status"] == "reserved"
    refused = (await ping(service, built, "+12125550002")).json()
    assert refused["status"] == "no-target"
    log = await owner_view(service, built, refused["uuid"])
    assert {row["outcome"] for row in log["decision_log"]} == {"capped:group-1:concurrency"}


@pytest.mark.parametrize(
    ("params", "status", "info"),
    [
        ({"publisher_id": "p", "caller_number": CALLER}, 401, "FAILED must include key (string)"),
        ({"key": "nope", "publisher_id": "p", "caller_number": CALLER}, 401, "FAILED invalid key"),
        (
            {"key": "' OR 1=1; DROP TABLE rtb_keys;--", "publisher_id": "p"},
            401,
            "FAILED invalid key",
        ),
        ({"key": "x" * 5000, "publisher_id": "p"}, 400, None),
    ],
)
async def test_bad_keys(
    service: Service, params: dict[str, str], status: int, info: str | None
) -> None:
    response = await service.client.post("/rtbs.json", params=params)
    assert response.status_code == status
    assert response.json()["status"] == "failed"
    if info is not None:
        assert response.json()["info"] == info


async def test_missing_caller_number_has_the_documented_message(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    response = await ping(service, built, caller=None)
    assert response.status_code == 400
    assert response.json() == {
        "status": "failed",
        "info": "FAILED must include caller_number (string)",
    }


@pytest.mark.parametrize(
    "caller", ["12345", "+1 000 000 0000", "not a number", "+" + "9" * 70, "+12125550123\x00"]
)
async def test_malformed_caller_numbers(service: Service, caller: str) -> None:
    built = await build_campaign(service.runtime.sessions)
    response = await ping(service, built, caller=caller)
    assert response.status_code == 400
    assert response.json()["status"] == "failed"


async def test_missing_publisher(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    response = await service.client.post(
        "/rtbs.json", params={"key": built.key, "caller_number": CALLER}
    )
    assert response.status_code == 400
    assert response.json()["info"] == "FAILED must include publisher_id (string)"
    alias = await service.client.post(
        "/rtbs.json", params={"key": built.key, "source_id": "s1", "caller_number": CALLER}
    )
    assert alias.json()["status"] == "reserved"


async def test_paused_key_and_blocked_publisher_are_forbidden(service: Service) -> None:
    paused = await build_campaign(service.runtime.sessions, key={"paused": True})
    assert (await ping(service, paused)).status_code == 403
    blocked = await build_campaign(
        service.runtime.sessions,
        publishers=[{"publisher_id": "pub-1", "blocked": True}],
    )
    response = await ping(service, blocked)
    assert response.status_code == 403
    assert response.json() == {"status": "failed", "info": "FAILED publisher is blocked"}


async def test_rate_limit_per_key_and_publisher(service: Service) -> None:
    built = await build_campaign(
        service.runtime.sessions, key={"rate_per_second": 1.0, "rate_burst": 2}
    )
    assert (await ping(service, built, "+12125550001")).status_code == 200
    assert (await ping(service, built, "+12125550002")).status_code == 200
    limited = await ping(service, built, "+12125550003")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["status"] == "failed"
    other_publisher = await service.client.post(
        "/rtbs.json",
        params={"key": built.key, "publisher_id": "pub-2", "caller_number": "+12125550004"},
    )
    assert other_publisher.status_code == 200
    service.clock.advance(1)
    assert (await ping(service, built, "+12125550005")).status_code == 200


async def test_malformed_bodies_get_clear_errors(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    url = f"/rtbs.json?key={built.key}"
    cases = [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"caller_number": {"nested": 1}}', "application/json", 400),
        (b"caller_number=%FF%FE", "application/x-www-form-urlencoded", 400),
        (b"\xff\xfe\xfd", "application/x-www-form-urlencoded", 400),
        (b"<xml/>", "application/xml", 415),
        (b"a=" + b"x" * 70000, "application/x-www-form-urlencoded", 413),
        (
            "&".join(f"t{i}=v" for i in range(200)).encode(),
            "application/x-www-form-urlencoded",
            400,
        ),
        (
            b"publisher_id=p&caller_number=1&big=" + b"y" * 5000,
            "application/x-www-form-urlencoded",
            400,
        ),
    ]
    for body, content_type, status in cases:
        response = await service.client.post(
            url, content=body, headers={"content-type": content_type}
        )
        assert response.status_code == status, (body[:30], response.text)
        assert response.json()["status"] == "failed"


async def test_non_utf8_query_string(service: Service) -> None:
    response = await service.client.post("/rtbs.json?key=%FF%FE&publisher_id=p")
    assert response.status_code == 400


async def test_wrong_methods_and_paths_answer_json(service: Service) -> None:
    put = await service.client.put("/rtbs.json")
    assert put.status_code == 405
    assert put.json()["status"] == "failed"
    head = await service.client.head("/rtbs.json")
    assert head.status_code == 405
    missing = await service.client.get("/nope.json")
    assert missing.status_code == 404
    assert missing.json()["status"] == "failed"
    post_resource = await service.client.post("/rtbs/00000000-0000-0000-0000-000000000000.json")
    assert post_resource.status_code == 405
    short_uuid = await service.client.get("/rtbs/abc.json", params={"key": "k"})
    assert short_uuid.status_code == 400


async def test_healthz(service: Service) -> None:
    response = await service.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_a_get_ping_reserves_exactly_as_a_post_does(service: Service) -> None:
    built = await build_campaign(service.runtime.sessions)
    params = {"key": built.key, "publisher_id": "pub-1", "caller_number": CALLER}

    got = await service.client.get("/rtbs.json", params=params)
    posted = (await ping(service, built, "+12125550124")).json()

    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    first = got.json()
    assert first["status"] == posted["status"] == "reserved"
    assert set(first) == set(posted)
    same = ("retreaver_payout", "retreaver_seconds", "expires_at")
    assert {k: first[k] for k in same} == {k: posted[k] for k in same}
    service.clock.advance(5)
    again = (await service.client.get("/rtbs.json", params=params)).json()
    assert again == {**first, "retreaver_ping_shield": True}
    assert (await ping(service, built)).json() == again


@pytest.mark.parametrize("path", ["/rtbs.json", "/call_reservations.json"])
async def test_head_on_a_creation_call_is_refused_and_reserves_nothing(
    service: Service, path: str
) -> None:
    built = await build_campaign(service.runtime.sessions)
    params = {"key": built.key, "publisher_id": "pub-1", "caller_number": CALLER}

    response = await service.client.head(path, params=params)

    assert response.status_code == 405
    after = (await ping(service, built)).json()
    assert after["status"] == "reserved"
    assert "retreaver_ping_shield" not in after
