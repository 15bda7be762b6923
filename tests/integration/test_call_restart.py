"""`kill -9` between a ping and its call, and again between the dial and the end, loses
nothing: the call still claims its reservation, the end still converts, the slot is freed."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from callbid.adapters.storage.db import create_engine, migrate, session_factory
from callbid.settings import Settings
from tests.builders import Built, build_campaign
from tests.integration.test_restart import Server, database_url, ping, server

__all__ = ["database_url", "server"]  # fixtures shared with the reservation restart test

pytestmark = pytest.mark.slow

TOKEN = "carrier-auth-token-restart"
CALLER, OTHER = "+12125550101", "+12125550102"


def prepare(url: str) -> Built:
    migrate(url)
    return asyncio.run(_build(url))


async def _build(url: str) -> Built:
    engine = create_engine(Settings(database_url=url))
    try:
        return await build_campaign(
            session_factory(engine),
            targets=[{"destination": "+13125550001", "concurrency_cap": 1}],
            key={"count_on_reserved": True, "ttl_seconds": 600},
            criteria=[{"payout": 12.5, "revenue": 25.0, "buffer_seconds": 90}],
            carrier_token=TOKEN,
        )
    finally:
        await engine.dispose()


def signed_post(url: str, form: dict[str, str]) -> httpx.Response:
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    return httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=5)


def dial_of(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    dial = ET.fromstring(response.text).find("Dial")
    assert dial is not None, response.text
    return dial


def call_view(srv: Server, built: Built, uuid: str) -> dict[str, Any]:
    response = httpx.get(
        f"{srv.url}/call_reservations/{uuid}",
        headers={"Authorization": f"Bearer {built.token}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_kill_9_between_ping_call_and_end_loses_nothing(server: Server, database_url: str) -> None:
    built = prepare(database_url)
    server.start()
    answer = ping(server, built, CALLER)
    assert answer["status"] == "reserved"
    inbound = str(answer["inbound_number"])
    server.kill()  # between the ping and the call

    server.start()
    sid = "CA" + "7" * 32
    voice = {"CallSid": sid, "From": CALLER, "To": inbound, "CallStatus": "ringing"}
    dial = dial_of(signed_post(f"{server.url}/twilio/voice", voice))
    assert dial[0].text == "+13125550001"
    answered = dial[0].attrib["statusCallback"]
    leg = {"CallSid": "CA" + "8" * 32, "ParentCallSid": sid, "CallStatus": "in-progress"}
    assert signed_post(answered, leg).status_code == 200
    server.kill()  # between the dial and the end

    server.start()
    # The live call still holds the target's only slot.
    assert ping(server, built, OTHER)["status"] == "no-target"
    done = {"CallSid": sid, "CallStatus": "in-progress", "DialCallStatus": "completed"}
    done["DialCallDuration"] = "120"
    hangup = signed_post(dial.attrib["action"], done)
    assert hangup.status_code == 200
    assert "<Hangup" in hangup.text

    view = call_view(server, built, str(answer["uuid"]))
    assert view["status"] == "claimed"
    assert view["call"]["match"] == "claimed"
    assert view["call"]["converted"] is True
    assert view["call"]["payout"] == 12.5
    assert ping(server, built, OTHER)["status"] == "reserved"  # the slot is free again
