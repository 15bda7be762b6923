"""Calls end to end through HTTP, signed as Twilio signs them: a ping reserves, the call claims
the reservation, TwiML dials the reserved buyer, the end converts (or not); late calls, other
callers, races, busy buyers, capacity and the JSON call-event API."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from itertools import count
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.builders import Built, build_campaign
from tests.conftest import Service, owner_view

TOKEN = "carrier-auth-token-0123456789"
CALLER = "+12125550123"
OTHER = "+12125550999"
BASE = "http://callbid.test"
CRITERIA = [{"publisher_id": "pub-1", "payout": 12.5, "revenue": 25.0, "buffer_seconds": 90}]
_SIDS = count(1)


@pytest.fixture
def service(any_service: Service) -> Service:
    return any_service


def new_sid() -> str:
    return f"CA{next(_SIDS):032x}"


@dataclass
class Dial:
    """What a TwiML answer told the carrier to do."""

    destination: str | None
    timeout: int | None
    action: str | None
    answered: str | None
    said: str | None


class Carrier:
    """Plays Twilio: sends webhooks signed with the account's auth token, as form posts or,
    for a number whose webhooks are set to GET, with the fields in the (signed) query."""

    def __init__(self, svc: Service, token: str = TOKEN, method: str = "POST") -> None:
        self.svc, self.token, self.method = svc, token, method

    async def post(self, url: str, form: dict[str, str], *, sign: bool = True) -> httpx.Response:
        full = url if url.startswith("http") else BASE + url
        if self.method == "GET":
            full += ("&" if "?" in full else "?") + urlencode(form)
            form = {}
        headers = {}
        if sign:
            headers["X-Twilio-Signature"] = RequestValidator(self.token).compute_signature(
                full, form
            )
        if self.method == "GET":
            return await self.svc.client.get(full, headers=headers)
        return await self.svc.client.post(full, data=form, headers=headers)

    async def incoming(self, sid: str, caller: str | None, dialled: str) -> Dial:
        form = {"CallSid": sid, "AccountSid": "AC1", "From": caller or "anonymous"}
        form |= {"To": dialled, "CallStatus": "ringing", "Direction": "inbound"}
        return twiml(await self.post("/twilio/voice", form))

    async def answered(self, dial: Dial, sid: str) -> None:
        assert dial.answered is not None
        form = {"CallSid": new_sid(), "ParentCallSid": sid, "CallStatus": "in-progress"}
        response = await self.post(dial.answered, form)
        assert response.status_code == 200, response.text

    async def dial_done(self, dial: Dial, sid: str, status: str, talk: int = 0) -> Dial:
        assert dial.action is not None
        form = {"CallSid": sid, "CallStatus": "in-progress", "DialCallStatus": status}
        if status == "completed":
            form["DialCallDuration"] = str(talk)
        return twiml(await self.post(dial.action, form))

    async def ended(self, sid: str, dialled: str, duration: int) -> None:
        form = {"CallSid": sid, "To": dialled, "CallStatus": "completed"}
        form["CallDuration"] = str(duration)
        response = await self.post("/twilio/status", form)
        assert response.status_code == 200, response.text

    async def talk(self, sid: str, caller: str | None, dialled: str, seconds: int) -> Dial:
        """A whole call: incoming, answered, talked `seconds`, hung up."""
        dial = await self.incoming(sid, caller, dialled)
        await self.answered(dial, sid)
        await self.dial_done(dial, sid, "completed", seconds)
        await self.ended(sid, dialled, seconds + 5)
        return dial


def twiml(response: httpx.Response) -> Dial:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.text)
    dial = root.find("Dial")
    said = root.findtext("Say")
    if dial is None:
        assert root.find("Hangup") is not None
        return Dial(None, None, None, None, said)
    noun = dial[0]
    return Dial(
        noun.text,
        int(dial.attrib["timeout"]),
        dial.attrib["action"],
        noun.attrib.get("statusCallback"),
        said,
    )


async def build(svc: Service, **kwargs: Any) -> Built:
    kwargs.setdefault("criteria", CRITERIA)
    kwargs.setdefault(
        "targets",
        [
            {"destination": "+13125550001", "priority": 1, "ring_timeout": 20},
            {"destination": "sip:agent@buyer.example", "priority": 2},
        ],
    )
    return await build_campaign(svc.runtime.sessions, carrier_token=TOKEN, **kwargs)


async def ping(svc: Service, built: Built, caller: str | None = CALLER) -> dict[str, Any]:
    params = {"key": built.key, "publisher_id": "pub-1"}
    if caller:
        params["caller_number"] = caller
    response = await svc.client.post("/rtbs.json", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def call_of(svc: Service, built: Built, sid: str) -> dict[str, Any]:
    response = await svc.client.get(
        "/api/v1/calls",
        params={"call_sid": sid},
        headers={"Authorization": f"Bearer {built.token}"},
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    assert len(found) == 1
    return found[0]


def events(call: dict[str, Any]) -> list[str]:
    return [entry["event"] for entry in call["flow"]]


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_reserved_call_is_dialled_and_converts_with_the_promised_payout(
    service: Service, method: str
) -> None:
    built = await build(service)
    answer = await ping(service, built)
    assert answer["status"] == "reserved"
    sid = new_sid()
    carrier = Carrier(service, method=method)

    dial = await carrier.incoming(sid, CALLER, answer["inbound_number"])
    assert dial.destination == "+13125550001"
    assert dial.timeout == 20
    service.clock.advance(2)
    await carrier.answered(dial, sid)
    service.clock.advance(120)
    after = await carrier.dial_done(dial, sid, "completed", 120)
    assert after.destination is None
    await carrier.ended(sid, answer["inbound_number"], 125)

    view = await owner_view(service, built, answer["uuid"])
    assert view["status"] == "claimed"
    assert view["claimed_at"] is not None
    call = view["call"]
    assert call["match"] == "claimed"
    assert call["converted"] is True
    assert call["payout"] == answer["retreaver_payout"] == 12.5
    assert call["revenue"] == 25.0
    assert call["connected_seconds"] == 120
    assert call["duration_seconds"] == 125
    assert call["publisher_id"] == "pub-1"
    assert events(call)[:2] == ["call_started", "matched"]
    assert "answered" in events(call)
    assert events(call)[-1] == "converted"
    publisher = await service.client.get(f"/rtbs/{answer['uuid']}.json", params={"key": built.key})
    assert publisher.json()["status"] == "claimed"


async def test_a_call_below_the_buffer_does_not_convert(service: Service) -> None:
    built = await build(service)
    answer = await ping(service, built)
    sid = new_sid()

    await Carrier(service).talk(sid, CALLER, answer["inbound_number"], 89)

    call = await call_of(service, built, sid)
    assert call["match"] == "claimed"
    assert call["converted"] is False
    assert call["payout"] == 0.0
    assert "below buffer" in call["conversion_info"]


async def test_a_call_after_expiry_is_routed_normally_and_says_why(service: Service) -> None:
    built = await build(service)
    answer = await ping(service, built)
    service.clock.advance(16)  # TTL 15 s
    sid = new_sid()

    dial = await Carrier(service).incoming(sid, CALLER, answer["inbound_number"])

    assert dial.destination == "+13125550001"  # the routing pool's first target
    call = await call_of(service, built, sid)
    assert call["match"] == "expired"
    assert call["reservation_uuid"] == answer["uuid"]
    assert call["flow"][1] == {
        "at": call["flow"][1]["at"],
        "event": "not_matched",
        "detail": "expired",
        "reservation": answer["uuid"],
    }
    view = await owner_view(service, built, answer["uuid"])
    assert view["status"] == "expired"
    assert view["call"]["match"] == "expired"


async def test_another_caller_is_routed_normally_and_says_why(service: Service) -> None:
    built = await build(service)
    answer = await ping(service, built)
    sid = new_sid()

    await Carrier(service).incoming(sid, OTHER, answer["inbound_number"])

    assert (await call_of(service, built, sid))["match"] == "other_caller"
    # The reservation is still there for its own caller.
    own = new_sid()
    await Carrier(service).incoming(own, CALLER, answer["inbound_number"])
    assert (await call_of(service, built, own))["match"] == "claimed"


async def test_a_call_without_reservation_is_routed_with_reason_none(service: Service) -> None:
    built = await build(service)
    sid = new_sid()

    dial = await Carrier(service).incoming(sid, CALLER, built.numbers[0])

    assert dial.destination == "+13125550001"
    call = await call_of(service, built, sid)
    assert call["match"] == "none"
    assert call["reservation_uuid"] is None


async def test_concurrent_calls_claim_a_reservation_once(service: Service) -> None:
    built = await build(service)
    answer = await ping(service, built)
    sids = [new_sid() for _ in range(6)]
    carrier = Carrier(service)

    await asyncio.gather(*(carrier.incoming(s, CALLER, answer["inbound_number"]) for s in sids))

    matches = sorted([(await call_of(service, built, s))["match"] for s in sids])
    assert matches == ["already_claimed"] * 5 + ["claimed"]


async def test_a_repeated_webhook_of_one_call_makes_one_call(service: Service) -> None:
    built = await build(service)
    answer = await ping(service, built)
    sid = new_sid()
    carrier = Carrier(service)

    dials = await asyncio.gather(
        *(carrier.incoming(sid, CALLER, answer["inbound_number"]) for _ in range(4))
    )

    assert {d.destination for d in dials} == {"+13125550001"}
    assert (await call_of(service, built, sid))["match"] == "claimed"


async def test_a_busy_target_moves_the_call_to_the_next(service: Service) -> None:
    built = await build(service)
    answer = await ping(service, built)
    sid = new_sid()
    carrier = Carrier(service)
    dial = await carrier.incoming(sid, CALLER, answer["inbound_number"])

    second = await carrier.dial_done(dial, sid, "busy")
    assert second.destination == "sip:agent@buyer.example"
    last = await carrier.dial_done(second, sid, "no-answer")

    assert last.destination is None
    assert last.said is not None
    call = await call_of(service, built, sid)
    assert "leg_busy" in events(call)
    assert "leg_no-answer" in events(call)
    assert events(call)[-1] == "fallback"


async def test_a_strict_key_routes_only_to_the_reserved_target(service: Service) -> None:
    built = await build(service, key={"strict_target": True})
    answer = await ping(service, built)
    sid = new_sid()
    carrier = Carrier(service)
    dial = await carrier.incoming(sid, CALLER, answer["inbound_number"])
    assert dial.destination == "+13125550001"

    after = await carrier.dial_done(dial, sid, "busy")

    assert after.destination is None


async def test_a_live_call_holds_its_targets_slot_until_it_ends(service: Service) -> None:
    built = await build(
        service,
        targets=[{"destination": "+13125550001", "concurrency_cap": 1}],
        groups=[{"concurrency_cap": 5, "members": [0]}],
    )
    answer = await ping(service, built)
    sid = new_sid()
    carrier = Carrier(service)
    dial = await carrier.incoming(sid, CALLER, answer["inbound_number"])
    await carrier.answered(dial, sid)
    service.clock.advance(60)  # long past the reservation's TTL

    assert (await ping(service, built, OTHER))["status"] == "no-target"

    await carrier.dial_done(dial, sid, "completed", 58)
    assert (await ping(service, built, OTHER))["status"] == "reserved"


async def test_a_connected_call_counts_against_the_daily_cap(service: Service) -> None:
    built = await build(service, targets=[{"destination": "+13125550001", "daily_cap": 1}])
    sid = new_sid()

    await Carrier(service).talk(sid, CALLER, built.numbers[0], 30)

    assert (await ping(service, built, OTHER))["status"] == "no-target"


async def test_a_call_whose_end_never_comes_is_closed_by_the_sweeper(service: Service) -> None:
    from callbid.service.calls import close_overdue

    built = await build(service, targets=[{"destination": "+13125550001", "concurrency_cap": 1}])
    sid = new_sid()
    carrier = Carrier(service)
    dial = await carrier.incoming(sid, CALLER, built.numbers[0])
    await carrier.answered(dial, sid)
    service.clock.advance(service.settings.call_max_seconds + 1)

    assert await close_overdue(service.runtime) == 1

    call = await call_of(service, built, sid)
    assert call["status"] == "ended"
    assert call["conversion_info"].startswith("closed by the sweeper")
    assert (await ping(service, built, OTHER))["status"] == "reserved"


@pytest.mark.parametrize("signature", [None, "d3Jvbmc="])
async def test_unsigned_or_wrongly_signed_webhooks_are_refused(
    service: Service, signature: str | None
) -> None:
    built = await build(service)
    answer = await ping(service, built)
    form = {"CallSid": new_sid(), "From": CALLER, "To": answer["inbound_number"]}
    headers = {"X-Twilio-Signature": signature} if signature else {}

    response = await service.client.post(f"{BASE}/twilio/voice", data=form, headers=headers)

    assert response.status_code == 403
    view = await owner_view(service, built, answer["uuid"])
    assert view["status"] == "reserved"
    assert view["call"] is None


async def test_a_webhook_signed_with_another_companys_token_is_refused(service: Service) -> None:
    built = await build(service)
    form = {"CallSid": new_sid(), "From": CALLER, "To": built.numbers[0]}

    response = await Carrier(service, token="someone-elses-token").post("/twilio/voice", form)

    assert response.status_code == 403


async def test_malformed_signed_webhooks_get_a_clear_400(service: Service) -> None:
    built = await build(service)
    carrier = Carrier(service)

    missing_sid = await carrier.post("/twilio/voice", {"From": CALLER, "To": built.numbers[0]})
    bad_status = await carrier.post(
        "/twilio/status", {"CallSid": "CA1", "To": built.numbers[0], "CallStatus": "exploded"}
    )

    assert missing_sid.status_code == 400
    assert "CallSid" in missing_sid.text
    assert bad_status.status_code == 400


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/twilio/dial", {"CallSid": "CA1", "CallStatus": "in-progress"}),
        ("/twilio/leg?line=not-a-number", {"CallSid": "CA1", "CallStatus": "in-progress"}),
        ("/twilio/leg?line=%2B13125559999", {"CallSid": "CA1", "CallStatus": "in-progress"}),
        ("/twilio/voice", {"CallSid": "CA1", "From": CALLER}),
        ("/twilio/voice", {"CallSid": "CA1", "From": CALLER, "To": "+13125559999"}),
        ("/twilio/status", {"CallSid": "CA1", "To": "nonsense", "CallStatus": "completed"}),
    ],
    ids=["dial-no-line", "bad-line", "unknown-line", "voice-no-to", "voice-unknown", "bad-to"],
)
@pytest.mark.parametrize("sign", [False, True], ids=["unsigned", "signed"])
async def test_a_webhook_for_no_known_line_is_refused_without_saying_why(
    service: Service, path: str, form: dict[str, str], sign: bool
) -> None:
    await build(service)

    response = await Carrier(service).post(path, form, sign=sign)

    assert response.status_code == 403
    assert response.text == "invalid or missing X-Twilio-Signature"


async def test_a_wrong_signature_on_every_route_is_refused_and_changes_nothing(
    service: Service,
) -> None:
    built = await build(service)
    answer = await ping(service, built)
    sid = new_sid()
    number = answer["inbound_number"]
    wrong = {"X-Twilio-Signature": "d3Jvbmc="}
    forms = {
        "/twilio/voice": {"CallSid": sid, "From": CALLER, "To": number},
        f"/twilio/dial?line={number}": {
            "CallSid": sid,
            "CallStatus": "in-progress",
            "DialCallStatus": "completed",
            "DialCallDuration": "120",
        },
        f"/twilio/leg?line={number}": {"CallSid": sid, "CallStatus": "in-progress"},
        "/twilio/status": {"CallSid": sid, "To": number, "CallStatus": "completed"},
    }

    for path, form in forms.items():
        response = await service.client.post(BASE + path, data=form, headers=wrong)
        assert response.status_code == 403, path
        assert response.text == "invalid or missing X-Twilio-Signature"

    view = await owner_view(service, built, answer["uuid"])
    assert view["status"] == "reserved"
    assert view["call"] is None


async def test_the_json_call_event_api_has_the_same_semantics(service: Service) -> None:
    built = await build(service)
    answer = await ping(service, built)
    auth = {"Authorization": f"Bearer {built.token}"}
    started = await service.client.post(
        "/api/v1/calls",
        json={"call_id": "fs-1", "from": CALLER, "to": answer["inbound_number"]},
        headers=auth,
    )
    assert started.status_code == 200, started.text
    routing = started.json()
    assert routing["match"] == "claimed"
    assert routing["destination"] == "+13125550001"
    assert [leg["destination"] for leg in routing["legs"]] == [
        "+13125550001",
        "sip:agent@buyer.example",
    ]

    connected = await service.client.post("/api/v1/calls/fs-1/connected", json={}, headers=auth)
    assert connected.status_code == 200, connected.text
    ended = await service.client.post(
        "/api/v1/calls/fs-1/ended", json={"connected_seconds": 95}, headers=auth
    )

    assert ended.status_code == 200, ended.text
    assert ended.json()["converted"] is True
    assert ended.json()["payout"] == 12.5
    bad = await service.client.post(
        "/api/v1/calls/fs-1/ended", json={"connected_seconds": -1}, headers=auth
    )
    assert bad.status_code == 422
    other = await build(service)
    foreign = await service.client.post(
        "/api/v1/calls",
        json={"call_id": "fs-2", "from": CALLER, "to": answer["inbound_number"]},
        headers={"Authorization": f"Bearer {other.token}"},
    )
    assert foreign.status_code == 404


async def test_an_unreadable_unsigned_form_is_refused_as_unsigned(service: Service) -> None:
    await build(service)
    headers = {"Content-Type": "multipart/form-data; boundary=x"}

    response = await service.client.post(
        f"{BASE}/twilio/voice", content=b"--x\r\nnot a part", headers=headers
    )

    assert response.status_code == 403


async def test_a_get_webhook_is_served_like_a_post(service: Service) -> None:
    built = await build(service)
    answer = await ping(service, built)
    sid = new_sid()

    dial = await Carrier(service, method="GET").incoming(sid, CALLER, answer["inbound_number"])

    assert dial == await Carrier(service).incoming(sid, CALLER, answer["inbound_number"])
    assert dial.destination == "+13125550001"
    call = await call_of(service, built, sid)
    assert call["match"] == "claimed"
    assert events(call)[:2] == ["call_started", "matched"]


@pytest.mark.parametrize("signature", [None, "d3Jvbmc=", "form"])
async def test_a_wrongly_signed_get_webhook_is_refused_and_changes_nothing(
    service: Service, signature: str | None
) -> None:
    built = await build(service)
    answer = await ping(service, built)
    form = {"CallSid": new_sid(), "From": CALLER, "To": answer["inbound_number"]}
    url = f"{BASE}/twilio/voice?{urlencode(form)}"
    if signature == "form":
        # Signed as if the fields were a POST's form: not how Twilio signs a GET.
        signature = RequestValidator(TOKEN).compute_signature(f"{BASE}/twilio/voice", form)
    headers = {"X-Twilio-Signature": signature} if signature else {}

    response = await service.client.get(url, headers=headers)

    assert response.status_code == 403
    assert response.text == "invalid or missing X-Twilio-Signature"
    view = await owner_view(service, built, answer["uuid"])
    assert view["status"] == "reserved"
    assert view["call"] is None


async def test_head_on_a_webhook_is_not_served(service: Service) -> None:
    built = await build(service)
    url = f"{BASE}/twilio/voice?{urlencode({'CallSid': new_sid(), 'To': built.numbers[0]})}"
    signature = RequestValidator(TOKEN).compute_signature(url, {})

    response = await service.client.head(url, headers={"X-Twilio-Signature": signature})

    assert response.status_code == 405
