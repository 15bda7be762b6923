"""Twilio's voice webhook dialect: signatures, incoming-call and progress forms, caller tags,
TwiML answers. Forms are real-shaped fixtures (`tests/fixtures/twilio/`, each naming the Twilio
page its fields come from)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from callbid.adapters.telephony.twilio import (
    CONTENT_TYPE,
    call_progress,
    call_started,
    caller_tags,
    is_signed,
    twiml_dial,
    twiml_hangup,
)
from callbid.domain.calls import CallProgress, CallStarted, CallStatus, Leg, RouteAnswer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twilio"
TOKEN = "0d4f8c1e5a7b9c2d3e4f5a6b7c8d9e0f"
ACTION = "https://calls.example.com/twilio/dial?call=CA4c04f24256b040637165e3ebe8918d43&leg=2"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def form(name: str, **changes: str | None) -> dict[str, str]:
    """A fixture's form with fields changed (a None value removes the field)."""
    fields: dict[str, str] = dict(fixture(name)["form"])
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


def sign(url: str, params: Any, token: str = TOKEN) -> str:
    signature: str = RequestValidator(token).compute_signature(url, params)
    return signature


def exactly(message: str) -> str:
    """A `match` pattern for exactly `message`."""
    return "^" + re.escape(message) + r"\Z"


def parse(twiml: str) -> ET.Element:
    assert twiml.startswith(DECLARATION)
    return ET.fromstring(twiml)


# --- signatures ----------------------------------------------------------------------------


def test_the_validator_matches_twilio_published_example() -> None:
    """Twilio's documented vector (docs/usage/security), computed here by hand as well."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    text = url + "".join(key + params[key] for key in sorted(params))
    by_hand = base64.b64encode(hmac.new(b"12345", text.encode(), hashlib.sha1).digest()).decode()
    assert by_hand == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert is_signed("12345", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not is_signed("12346", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


@pytest.mark.parametrize(
    "name", ["incoming_call", "status_completed", "dial_busy", "dial_no_answer", "dial_completed"]
)
def test_a_signed_webhook_is_signed(name: str) -> None:
    url, params = fixture(name)["url"], form(name)
    assert is_signed(TOKEN, url, params, sign(url, params))


def _wrong_token(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN + "x", url, params, signature)


def _changed_param(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url, {**params, "From": "+13035551235"}, signature)


def _added_param(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url, {**params, "Digits": "1"}, signature)


def _removed_param(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url, {k: v for k, v in params.items() if k != "FromZip"}, signature)


def _stripped_value(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url, {**params, "CalledCity": "NEW YORK "}, signature)


def _changed_path(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url.replace("/voice", "/voices"), params, signature)


def _changed_query(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url.replace("12125550123", "12125550124"), params, signature)


def _dropped_query(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url.split("?")[0], params, signature)


def _plain_http(url: str, params: dict[str, str], signature: str) -> bool:
    """What the application sees behind a TLS-terminating proxy."""
    return is_signed(TOKEN, url.replace("https://", "http://"), params, signature)


def _internal_host(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url.replace("calls.example.com", "10.0.0.7:8000"), params, signature)


def _missing_header(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url, params, None)


def _empty_header(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url, params, "")


def _other_signature(url: str, params: dict[str, str], signature: str) -> bool:
    return is_signed(TOKEN, url, params, signature[:-2] + ("A=" if signature[-2] != "A" else "B="))


@pytest.mark.parametrize(
    "check",
    [
        _wrong_token,
        _changed_param,
        _added_param,
        _removed_param,
        _stripped_value,
        _changed_path,
        _changed_query,
        _dropped_query,
        _plain_http,
        _internal_host,
        _missing_header,
        _empty_header,
        _other_signature,
    ],
)
def test_anything_changed_is_not_signed(check: Any) -> None:
    url, params = fixture("incoming_call")["url"], form("incoming_call")
    signature = sign(url, params)
    assert is_signed(TOKEN, url, params, signature)
    assert check(url, params, signature) is False


def test_an_empty_token_signs_nothing() -> None:
    """Anyone can compute a signature under an empty token: a missing setting must not pass."""
    url, params = fixture("incoming_call")["url"], form("incoming_call")
    assert not is_signed("", url, params, sign(url, params, token=""))


def test_the_validator_tries_the_url_with_and_without_its_port() -> None:
    """Twilio's own signatures are inconsistent about ports, so its validator also tries the
    URL with the port removed (whatever it is) and with the scheme's default port added."""
    params = form("incoming_call")
    bare = sign("https://calls.example.com/twilio/voice", params)
    assert is_signed(TOKEN, "https://calls.example.com:443/twilio/voice", params, bare)
    assert is_signed(TOKEN, "https://calls.example.com:8443/twilio/voice", params, bare)
    with_port = sign("https://calls.example.com:8443/twilio/voice", params)
    assert is_signed(TOKEN, "https://calls.example.com:8443/twilio/voice", params, with_port)
    assert not is_signed(TOKEN, "https://calls.example.com/twilio/voice", params, with_port)
    assert not is_signed(TOKEN, "https://calls.example.com:9443/twilio/voice", params, with_port)


def test_unicode_values_are_signed_as_utf8() -> None:
    url = fixture("incoming_call")["url"]
    params = form("incoming_call", CallerName="Zoë Ångström 東京 😀", FromCity="SÃO PAULO")
    signature = sign(url, params)
    assert is_signed(TOKEN, url, params, signature)
    decomposed = {**params, "CallerName": unicodedata.normalize("NFD", params["CallerName"])}
    assert decomposed != params
    assert not is_signed(TOKEN, url, decomposed, signature)


def test_a_repeated_field_is_signed_with_every_value() -> None:
    """Twilio sorts by name, then by value; a multi-dict keeps every value, a dict one."""
    url = fixture("incoming_call")["url"]
    fields = [*form("incoming_call").items(), ("StatusCallbackEvent", "ringing")]
    fields += [("StatusCallbackEvent", "answered"), ("StatusCallbackEvent", "completed")]
    received = FormData(fields)
    signature = sign(url, received)
    assert is_signed(TOKEN, url, received, signature)
    assert is_signed(TOKEN, url, FormData(list(reversed(fields))), signature)
    assert not is_signed(TOKEN, url, FormData(fields[:-1]), signature)
    assert not is_signed(TOKEN, url, dict(fields), signature)


@pytest.mark.parametrize(
    ("url", "params", "token"),
    [
        ("https://calls.example.com:99999/twilio/voice", {"CallSid": "CA1"}, TOKEN),
        ("https://calls.example.com:port/twilio/voice", {"CallSid": "CA1"}, TOKEN),
        ("https://calls.example.com/twilio/voice", {"CallSid": 1}, TOKEN),
        ("https://calls.example.com/twilio/voice", {"CallSid": b"CA1"}, TOKEN),
        ("https://calls.example.com/twilio/voice", {"CallSid": "CA\ud800"}, TOKEN),
        ("https://calls.example.com/twilio/voice", {"CallSid": "CA1"}, "tok\udfffen"),
    ],
)
def test_unreadable_input_is_not_signed_and_never_raises(url: str, params: Any, token: str) -> None:
    assert is_signed(token, url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") is False


# --- incoming call -------------------------------------------------------------------------


def test_incoming_call_parses() -> None:
    assert call_started(form("incoming_call")) == CallStarted(
        call_sid="CA4c04f24256b040637165e3ebe8918d43",
        caller="+13035551234",
        dialled="+12125550123",
        received_at=None,
    )


def test_compatible_carriers_ids_and_national_numbers_are_read() -> None:
    started = call_started(
        {
            "CallSid": " b3877c40-da60-4998-90ad-b792e98472pa ",
            "From": "(303) 555-1234",
            "To": "2125550123",
        }
    )
    assert started == CallStarted(
        "b3877c40-da60-4998-90ad-b792e98472pa", "+13035551234", "+12125550123"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "anonymous",
        "Anonymous",
        " ANONYMOUS ",
        "restricted",
        "unknown",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+8656696",
        "+86282452253",
        "client:bob",
        "client:Anonymous",
        "sip:alice@example.sip.twilio.com",
        "",
        "   ",
        "12345",
        None,
    ],
)
def test_a_withheld_or_non_phone_caller_is_none(raw: str | None) -> None:
    started = call_started(form("incoming_call", From=raw))
    assert started.caller is None
    assert started.dialled == "+12125550123"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"CallSid": None}, "CallSid is missing"),
        ({"CallSid": ""}, "CallSid is missing"),
        ({"CallSid": "  "}, "CallSid is missing"),
        ({"CallSid": "CA4c04 f24256"}, "CallSid is not a call id: 'CA4c04 f24256'"),
        ({"CallSid": "CA\x00"}, "CallSid is not a call id: 'CA\\x00'"),
        ({"CallSid": "CA" + "f" * 127}, "CallSid is not a call id: 'CA" + "f" * 38 + "'"),
        ({"To": None}, "To is missing"),
        ({"To": ""}, "To is missing"),
        ({"To": " "}, "To is missing"),
        ({"To": "client:support"}, "To is not a phone number: 'client:support'"),
        (
            {"To": "sip:+12125550123@callbid.sip.twilio.com"},
            "To is not a phone number: 'sip:+12125550123@callbid.sip.twilio.com'",
        ),
        # Twilio's documentation example number: 555-867-5310 is not a number in service.
        ({"To": "+15558675310"}, "To is not a phone number: '+15558675310'"),
        ({"To": "anonymous"}, "To is not a phone number: 'anonymous'"),
        ({"To": "+1" + "2" * 60}, "To is not a phone number: '+1" + "2" * 38 + "'"),
    ],
)
def test_incoming_call_errors(changes: dict[str, str | None], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        call_started(form("incoming_call", **changes))


def test_the_sid_is_checked_first() -> None:
    with pytest.raises(ValueError, match=exactly("CallSid is missing")):
        call_started({"From": "+13035551234"})
    with pytest.raises(ValueError, match=exactly("CallSid is missing")):
        call_progress({"CallDuration": "x"})


# --- progress ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "status_completed",
            CallProgress(
                "CA4c04f24256b040637165e3ebe8918d43", CallStatus.COMPLETED, 94, None, None
            ),
        ),
        (
            "dial_busy",
            CallProgress(
                "CA0717f72ae78a0472b3c3f0edb1bcccad",
                CallStatus.IN_PROGRESS,
                None,
                CallStatus.BUSY,
                None,
            ),
        ),
        (
            "dial_no_answer",
            CallProgress(
                "CAcb1900f9687e3d238632706afded141d",
                CallStatus.IN_PROGRESS,
                None,
                CallStatus.NO_ANSWER,
                None,
            ),
        ),
        (
            "dial_completed",
            CallProgress(
                "CA2e9dd7d76d082f6b969e71b1a9cc72b9",
                CallStatus.COMPLETED,
                None,
                CallStatus.COMPLETED,
                87,
            ),
        ),
    ],
)
def test_progress_forms_parse(name: str, expected: CallProgress) -> None:
    assert call_progress(form(name)) == expected


@pytest.mark.parametrize("status", list(CallStatus))
def test_every_status_is_read(status: CallStatus) -> None:
    progress = call_progress(
        form("dial_busy", CallStatus=status.value, DialCallStatus=status.value)
    )
    assert (progress.status, progress.dial_status) == (status, status)
    assert type(progress.status) is CallStatus


def test_statuses_are_read_in_any_case() -> None:
    progress = call_progress(form("dial_busy", CallStatus=" In-Progress ", DialCallStatus="BUSY"))
    assert (progress.status, progress.dial_status) == (CallStatus.IN_PROGRESS, CallStatus.BUSY)


def test_an_answered_conference_leg_is_completed() -> None:
    assert call_progress(form("dial_busy", DialCallStatus="answered")).dial_status == (
        CallStatus.COMPLETED
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0), ("94", 94), (" 42 ", 42), ("007", 7), ("", None), (" ", None)]
)
def test_durations(raw: str, expected: int | None) -> None:
    progress = call_progress(form("dial_completed", CallDuration=raw, DialCallDuration=raw))
    assert (progress.duration_seconds, progress.dial_duration_seconds) == (expected, expected)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"CallSid": None}, "CallSid is missing"),
        ({"CallStatus": None}, "CallStatus is missing"),
        ({"CallStatus": ""}, "CallStatus is missing"),
        ({"CallStatus": "answered"}, "CallStatus is not a call status: 'answered'"),
        ({"CallStatus": "in_progress"}, "CallStatus is not a call status: 'in_progress'"),
        ({"CallStatus": "cancelled"}, "CallStatus is not a call status: 'cancelled'"),
        ({"DialCallStatus": ""}, "DialCallStatus is not a call status: ''"),
        ({"DialCallStatus": "noanswer"}, "DialCallStatus is not a call status: 'noanswer'"),
        ({"DialCallStatus": "x" * 50}, "DialCallStatus is not a call status: '" + "x" * 40 + "'"),
        ({"CallDuration": "-1"}, "CallDuration is not a whole number of seconds: '-1'"),
        ({"CallDuration": "+5"}, "CallDuration is not a whole number of seconds: '+5'"),
        ({"CallDuration": "1.5"}, "CallDuration is not a whole number of seconds: '1.5'"),
        ({"CallDuration": "1e3"}, "CallDuration is not a whole number of seconds: '1e3'"),
        ({"CallDuration": "abc"}, "CallDuration is not a whole number of seconds: 'abc'"),
        ({"CallDuration": "1 0"}, "CallDuration is not a whole number of seconds: '1 0'"),
        ({"CallDuration": "٣"}, "CallDuration is not a whole number of seconds: '٣'"),
        (
            {"CallDuration": "1234567890"},
            "CallDuration is not a whole number of seconds: '1234567890'",
        ),
        ({"DialCallDuration": "-87"}, "DialCallDuration is not a whole number of seconds: '-87'"),
        ({"DialCallDuration": "87s"}, "DialCallDuration is not a whole number of seconds: '87s'"),
    ],
)
def test_progress_errors(changes: dict[str, str | None], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        call_progress(form("dial_completed", **changes))


# --- caller tags ---------------------------------------------------------------------------


def test_caller_tags_from_twilio_geo_fields() -> None:
    assert caller_tags(form("incoming_call")) == {
        "caller_zip": "80202",
        "caller_state": "CO",
        "caller_city": "DENVER",
        "caller_country": "US",
    }


def test_caller_tags_skip_blank_and_absent_fields_and_strip() -> None:
    fields = form("incoming_call", FromZip="", FromState=" ", FromCity=None, FromCountry=" CA ")
    assert caller_tags(fields) == {"caller_country": "CA"}
    assert caller_tags({}) == {}


# --- TwiML ---------------------------------------------------------------------------------


def test_the_answer_is_served_as_xml() -> None:
    assert CONTENT_TYPE == "text/xml"


def test_a_number_leg_is_dialled() -> None:
    answer = RouteAnswer(
        legs=(Leg("+13035551234", 25, 7), Leg("+12125550123", 30, 8)), fallback="Goodbye"
    )
    twiml = twiml_dial(answer, "https://calls.example.com/twilio/dial")
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Dial timeout="25" action="https://calls.example.com/twilio/dial" method="POST">'
        "<Number>+13035551234</Number></Dial></Response>"
    )
    response = parse(twiml)
    assert response.tag == "Response"
    assert response.attrib == {}
    [dial] = list(response)
    assert dial.tag == "Dial"
    assert dial.attrib == {
        "timeout": "25",
        "action": "https://calls.example.com/twilio/dial",
        "method": "POST",
    }
    [number] = list(dial)
    assert (number.tag, number.text, number.attrib, list(number)) == (
        "Number",
        "+13035551234",
        {},
        [],
    )
    assert "+12125550123" not in twiml
    assert "Goodbye" not in twiml


@pytest.mark.parametrize(
    "uri",
    [
        "sip:buyer@sip.buyer.example",
        "sip:+12125550123@pbx.example.com;transport=tls",
        "SIP:buyer@sip.buyer.example:5060",
        "sips:buyer@sip.buyer.example",
    ],
)
def test_a_sip_leg_is_dialled(uri: str) -> None:
    response = parse(twiml_dial(RouteAnswer((Leg(uri, 45, 3),), None), ACTION))
    [dial] = list(response)
    assert dial.attrib == {"timeout": "45", "action": ACTION, "method": "POST"}
    [sip] = list(dial)
    assert (sip.tag, sip.text) == ("Sip", uri)


def test_the_sip_uri_is_escaped() -> None:
    uri = 'sip:a&b<c>@pbx.example.com;x-tag="q"'
    twiml = twiml_dial(RouteAnswer((Leg(uri, 30, 1),), None), ACTION)
    assert '<Sip>sip:a&amp;b&lt;c&gt;@pbx.example.com;x-tag="q"</Sip>' in twiml
    [dial] = list(parse(twiml))
    assert dial[0].text == uri


def test_the_action_url_is_escaped() -> None:
    action = "https://calls.example.com/twilio/dial?a=1&b=<2>&c=\"3\"&d='4'"
    twiml = twiml_dial(RouteAnswer((Leg("+13035551234", 20, 1),), None), action)
    assert (
        'action="https://calls.example.com/twilio/dial?a=1&amp;b=&lt;2&gt;&amp;c=&quot;3&quot;'
        in twiml
    )
    [dial] = list(parse(twiml))
    assert dial.attrib["action"] == action
    assert dial.attrib["method"] == "POST"
    assert len(dial.attrib) == 3


def test_no_leg_says_the_fallback_and_hangs_up() -> None:
    twiml = twiml_dial(RouteAnswer((), "Sorry, nobody is available. Goodbye."), ACTION)
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        "<Say>Sorry, nobody is available. Goodbye.</Say><Hangup /></Response>"
    )
    say, hangup = list(parse(twiml))
    assert (say.tag, say.text, say.attrib) == ("Say", "Sorry, nobody is available. Goodbye.", {})
    assert (hangup.tag, hangup.text, hangup.attrib, list(hangup)) == ("Hangup", None, {}, [])
    assert ACTION not in twiml


def test_the_fallback_is_escaped() -> None:
    fallback = 'Tom & Jerry <say-as> "closed" it\'s </Say><Dial>+19005550000</Dial>'
    twiml = twiml_dial(RouteAnswer((), fallback), ACTION)
    assert "<Dial>" not in twiml
    assert "Tom &amp; Jerry &lt;say-as&gt;" in twiml
    say, hangup = list(parse(twiml))
    assert (say.tag, say.text, hangup.tag) == ("Say", fallback, "Hangup")


@pytest.mark.parametrize("fallback", [None, "", "   \n"])
def test_no_leg_and_no_fallback_only_hangs_up(fallback: str | None) -> None:
    twiml = twiml_dial(RouteAnswer((), fallback), ACTION)
    assert twiml == twiml_hangup()
    [hangup] = list(parse(twiml))
    assert hangup.tag == "Hangup"


def test_hangup() -> None:
    twiml = twiml_hangup()
    assert twiml == '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'
    response = parse(twiml)
    assert [child.tag for child in response] == ["Hangup"]


def test_characters_xml_cannot_carry_are_dropped() -> None:
    fallback = "Closed\x00 now\x1b.\ud800\tBye\uffff"
    action = "https://calls.example.com/dial?x=\x01y"
    say, _ = list(parse(twiml_dial(RouteAnswer((), fallback), action)))
    assert say.text == "Closed now.\tBye"
    [dial] = list(parse(twiml_dial(RouteAnswer((Leg("+13035551234", 20, 1),), None), action)))
    assert dial.attrib["action"] == "https://calls.example.com/dial?x=y"


@settings(max_examples=300, deadline=None)
@given(fallback=st.text(), action=st.text())
def test_any_text_makes_parseable_twiml(fallback: str, action: str) -> None:
    said = parse(twiml_dial(RouteAnswer((), fallback), action))
    dialled = parse(twiml_dial(RouteAnswer((Leg("sip:a@b.example", 20, 1),), fallback), action))
    assert [child.tag for child in said][-1] == "Hangup"
    assert dialled[0].attrib["timeout"] == "20"
    twiml_dial(RouteAnswer((), fallback), action).encode("utf-8")


@pytest.mark.parametrize(
    ("leg", "message"),
    [
        (
            Leg("13035551234", 20, 1),
            "leg destination is neither E.164 nor a SIP URI: '13035551234'",
        ),
        (
            Leg("+1 303 555 1234", 20, 1),
            "leg destination is neither E.164 nor a SIP URI: '+1 303 555 1234'",
        ),
        (
            Leg("tel:+13035551234", 20, 1),
            "leg destination is neither E.164 nor a SIP URI: 'tel:+13035551234'",
        ),
        (Leg("client:bob", 20, 1), "leg destination is neither E.164 nor a SIP URI: 'client:bob'"),
        (Leg("sip:", 20, 1), "leg destination is neither E.164 nor a SIP URI: 'sip:'"),
        (Leg("sip:a b@c", 20, 1), "leg destination is neither E.164 nor a SIP URI: 'sip:a b@c'"),
        (
            Leg("sip:a@b\x00", 20, 1),
            "leg destination is neither E.164 nor a SIP URI: 'sip:a@b\\x00'",
        ),
        (Leg("", 20, 1), "leg destination is neither E.164 nor a SIP URI: ''"),
        (Leg("+13035551234", 0, 1), "leg ring timeout is not positive: 0"),
        (Leg("+13035551234", -5, 1), "leg ring timeout is not positive: -5"),
    ],
)
def test_twiml_dial_errors(leg: Leg, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        twiml_dial(RouteAnswer((leg,), "Goodbye"), ACTION)
