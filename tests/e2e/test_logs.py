"""The log of a real `callbid serve` run: one JSON event per request and call step, and not
one secret or full caller number in the whole of it."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.e2e.test_simulate import Served, callbid, last_json, served

__all__ = ["served"]

pytestmark = pytest.mark.slow

CALLERS = ["+12125550161", "+12125550162", "+12125550163"]


def test_a_runs_whole_log_has_its_events_and_no_secret(served: Served) -> None:
    demo = last_json(callbid(served, "demo", "--json"))
    admin = {"Authorization": f"Bearer {demo['admin_token']}"}
    empty = httpx.post(f"{served.url}/api/v1/campaigns", json={"name": "No buyers"}, headers=admin)
    assert empty.status_code == 201, empty.text
    other = httpx.post(
        f"{served.url}/api/v1/rtb-keys", json={"campaign_id": empty.json()["id"]}, headers=admin
    )
    assert other.status_code == 201, other.text

    def ping(key: str, caller: str, method: str = "POST") -> dict[str, Any]:
        params = {"key": key, "publisher_id": demo["publisher_id"], "caller_number": caller}
        answer = httpx.request(method, f"{served.url}/rtbs.json", params=params, timeout=10)
        body: dict[str, Any] = answer.json()
        return body

    first = ping(demo["key"], CALLERS[0])
    assert first["status"] == "reserved"
    assert ping(demo["key"], CALLERS[0], "GET")["uuid"] == first["uuid"]  # shielded
    assert ping(other.json()["key"], CALLERS[1])["status"] == "no-target"
    assert ping("not-a-key", CALLERS[2])["status"] == "failed"
    resource = f"{served.url}/rtbs/{first['uuid']}.json"
    confirmed = httpx.put(resource, params={"key": demo["key"], "status": "confirmed"})
    assert confirmed.json()["status"] == "confirmed", confirmed.text
    assert httpx.delete(resource, params={"key": demo["key"]}).json()["status"] == "wiped"
    # The calls on a key of the demo campaign whose reservations live 3 s: simulate waits
    # for every reservation to expire before it compares the reports.
    quick = httpx.post(
        f"{served.url}/api/v1/rtb-keys",
        json={"campaign_id": demo["campaign_id"], "ttl_seconds": 3},
        headers=admin,
    )
    assert quick.status_code == 201, quick.text
    simulated = callbid(
        served, "simulate", "--pings", "8", "--rate", "20", "--seed", "5", "--json",
        "--key", quick.json()["key"], "--publisher-id", str(demo["publisher_id"]),
        "--admin-token", demo["admin_token"], "--carrier-token", demo["carrier_auth_token"],
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr

    log = served.stop()

    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert events, log
    by_name: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_name.setdefault(event.get("event", ""), []).append(event)
    reserved = next(
        e for e in by_name["ping"] if e.get("uuid") == first["uuid"] and "shielded" not in e
    )
    assert reserved == reserved | {
        "level": "info",
        "company": 1,
        "campaign": demo["campaign_id"],
        "publisher": demo["publisher_id"],
        "status": "reserved",
        "http_status": 200,
        "caller": "***0161",
    }
    assert len(reserved["key_id"]) == 12
    assert reserved["latency_ms"] > 0
    assert any(e.get("shielded") for e in by_name["ping"])
    refused = [e for e in by_name["ping"] if e["status"] == "no-target"]
    assert refused[0]["reason_code"], refused
    assert any(e["http_status"] == 401 and e["status"] == "failed" for e in by_name["ping"])
    assert [e["status"] for e in by_name["confirm"]] == ["confirmed"]
    assert [e["status"] for e in by_name["release"]] == ["wiped"]
    for name in ("call.started", "call.connected", "call.ended"):
        assert by_name.get(name), f"no {name} event in {sorted(by_name)}"
    ended = by_name["call.ended"][0]
    assert {"call", "call_sid", "connected_seconds", "converted", "caller"} <= set(ended)

    keys = [demo["key"], other.json()["key"], quick.json()["key"]]
    secrets = [demo["admin_token"], *keys, demo["carrier_auth_token"]]
    for secret in secrets:
        assert secret not in log
    for caller in CALLERS:
        assert caller not in log
        assert caller.removeprefix("+1") not in log
    # Any full number left is one of the demo's own tracking numbers (the dialled line).
    assert {n for n in re.findall(r"\+\d{10,15}", log) if not n.startswith("+1888555")} == set()
