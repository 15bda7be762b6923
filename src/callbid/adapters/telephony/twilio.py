"""Twilio's voice webhook dialect (and compatible carriers'): signatures, call events, TwiML.

Pure functions, no I/O. The HTTP layer checks `is_signed` before anything else, parses the form
with `call_started` (the incoming-call webhook) or `call_progress` (a status callback or a
`<Dial action>` callback), and answers the incoming call and each `<Dial action>` callback with
`twiml_dial` or `twiml_hangup`: status 200, `Content-Type: text/xml` (`CONTENT_TYPE`; Twilio
also accepts `application/xml`). Twilio executes what it is answered, so an answer must never
be anything but TwiML.

Forms are read as `Mapping[str, str]`, field names as Twilio spells them (`CallSid`, `From`,
`To`, `CallStatus`, `CallDuration`, `DialCallStatus`, `DialCallDuration`, `FromZip`, ...).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from twilio.request_validator import RequestValidator

from callbid.adapters.phone import to_e164
from callbid.domain.calls import CallProgress, CallStarted, CallStatus, Leg, RouteAnswer

CONTENT_TYPE = "text/xml"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
#: What Twilio puts in `From` when the caller withheld their number: words, and numbers that
#: spell ANONYMOUS, RESTRICTED, BLOCKED, UNKNOWN and UNAVAILABLE on a keypad. None of them is a
#: valid number today; listed so that a metadata update of `phonenumbers` cannot make one so.
WITHHELD = frozenset(
    {
        "anonymous",
        "restricted",
        "blocked",
        "unknown",
        "unavailable",
        "private",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+8656696",
        "+86282452253",
    }
)
#: Twilio's are 34 characters (`CA` and 32 hex digits); compatible carriers use UUIDs and longer.
MAX_SID = 128
#: Longest duration accepted, in digits: 999999999 seconds is some 31 years.
MAX_DURATION_DIGITS = 9
#: How much of a rejected value an error message quotes.
MAX_SHOWN = 40
#: `DialCallStatus` values Twilio sends outside `CallStatus`: `answered` is a `<Dial>` leg (of a
#: `<Conference>`) that answered and was connected, which `completed` says of a `<Number>` leg.
DIAL_ALIASES = {"answered": CallStatus.COMPLETED}
#: Twilio's look-up of the caller's place, as the tags pings carry.
GEO_TAGS = (
    ("FromZip", "caller_zip"),
    ("FromState", "caller_state"),
    ("FromCity", "caller_city"),
    ("FromCountry", "caller_country"),
)
_SIP_SCHEMES = ("sip:", "sips:")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_DURATION = re.compile(rf"[0-9]{{1,{MAX_DURATION_DIGITS}}}")
#: What XML 1.0 cannot carry at all, escaped or not: C0 controls other than tab, LF and CR,
#: lone surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def is_signed(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    """Whether `signature` (the `X-Twilio-Signature` header) is Twilio's signature of `url` and
    `params` under `auth_token`, as the `twilio` package's own `RequestValidator` checks it.

    Never raises: a missing or empty signature, an empty token (anyone could sign with it), and
    input the validator cannot read (a URL with a malformed port, a value that is not text) are
    all not signed.

    `url` must be the full public URL Twilio requested: scheme, host, path and query, as set in
    Twilio's console. Behind a proxy or load balancer the URL the application sees differs
    (`http` for `https`, an internal host or port), so the operator must configure the public
    one. The validator also tries the URL without its port (any port) and with the scheme's
    default port, as Twilio signs either.

    `params` are the POST form fields exactly as received (no stripping), `{}` for a GET
    webhook (whose fields are in the URL's query). Twilio signs every value of a repeated field:
    pass the web framework's multi-dict (Starlette's `FormData`, which has `getlist`), as a
    plain dict keeps one value per field. Shared-key signatures (HMAC-SHA256, announced by an
    `X-Twilio-Webhooks-Signature-Settings` header) are not accepted here.
    """
    if not signature or not auth_token:
        return False
    try:
        return bool(RequestValidator(auth_token).validate(url, params, signature))
    except Exception:
        # The validator is untyped third-party code run on a request's input: whatever it
        # raises, a signature that cannot be checked is not valid.
        return False


def call_started(form: Mapping[str, str]) -> CallStarted:
    """The incoming-call webhook as a `CallStarted`; `received_at` is left to the receiver.

    `To` is normalised to E.164. `From` is too, or becomes None: withheld (`anonymous`,
    `+266696687`, ...), a Twilio client or SIP identity (`client:bob`, `sip:...`), empty, absent
    or otherwise not a valid number.

    Raises ValueError, naming the field, when `CallSid` is missing or not an id, or `To` is
    missing or not a valid phone number.
    """
    return CallStarted(
        call_sid=call_sid_of(form),
        caller=caller_of(form.get("From")),
        dialled=dialled_of(form.get("To")),
    )


def call_progress(form: Mapping[str, str]) -> CallProgress:
    """A status callback's or a `<Dial action>` callback's form as a `CallProgress`.

    `CallStatus` is required; `DialCallStatus` is read when present (`answered` as `completed`).
    Durations (`CallDuration`, `DialCallDuration`) are whole seconds, None when absent or empty.

    Raises ValueError, naming the field, when `CallSid` or `CallStatus` is missing, a status is
    not one of `CallStatus`, or a duration is not a non-negative whole number.
    """
    call_sid = call_sid_of(form)
    status = form.get("CallStatus")
    if status is None or not status.strip():
        raise ValueError("CallStatus is missing")
    dial_status = form.get("DialCallStatus")
    return CallProgress(
        call_sid=call_sid,
        status=status_of("CallStatus", status),
        duration_seconds=duration_of("CallDuration", form.get("CallDuration")),
        dial_status=None if dial_status is None else status_of("DialCallStatus", dial_status),
        dial_duration_seconds=duration_of("DialCallDuration", form.get("DialCallDuration")),
    )


def caller_tags(form: Mapping[str, str]) -> dict[str, str]:
    """The caller's place as Twilio looked it up: `caller_zip`, `caller_state`, `caller_city`
    and `caller_country` from `FromZip`, `FromState`, `FromCity` and `FromCountry`, each when
    present and not blank, stripped."""
    tags = {}
    for field, tag in GEO_TAGS:
        value = form.get(field, "").strip()
        if value:
            tags[tag] = value
    return tags


def twiml_dial(answer: RouteAnswer, action_url: str, answered_url: str | None = None) -> str:
    """TwiML that dials the answer's first leg (`<Number>`, or `<Sip>` for a `sip:`/`sips:`
    URI) for its ring timeout, Twilio then POSTing the outcome to `action_url` (and, with
    `answered_url`, the moment the leg answers: its status callback). With no leg: `<Say>`
    the fallback, when there is one and it is not blank, and `<Hangup/>`.

    Every value is escaped; characters XML 1.0 cannot carry at all (controls other than tab
    and newlines, lone surrogates) are dropped. Raises ValueError when the first leg's
    destination is neither E.164 nor a SIP URI, or its ring timeout is not positive.
    """
    if not answer.legs:
        return fallback_twiml(answer.fallback)
    leg = answer.legs[0]
    response = ET.Element("Response")
    dial = ET.SubElement(
        response,
        "Dial",
        {"timeout": str(ring_timeout_of(leg)), "action": xml_text(action_url), "method": "POST"},
    )
    noun, destination = destination_of(leg)
    attributes = {}
    if answered_url is not None:
        attributes = {
            "statusCallbackEvent": "answered",
            "statusCallback": xml_text(answered_url),
            "statusCallbackMethod": "POST",
        }
    ET.SubElement(dial, noun, attributes).text = destination
    return render(response)


def twiml_hangup() -> str:
    """TwiML that ends the call."""
    response = ET.Element("Response")
    ET.SubElement(response, "Hangup")
    return render(response)


def fallback_twiml(fallback: str | None) -> str:
    """TwiML that says `fallback` (when not blank) and hangs up."""
    response = ET.Element("Response")
    message = xml_text(fallback or "").strip()
    if message:
        ET.SubElement(response, "Say").text = message
    ET.SubElement(response, "Hangup")
    return render(response)


def render(response: ET.Element) -> str:
    return XML_DECLARATION + ET.tostring(response, encoding="unicode")


def xml_text(value: str) -> str:
    """`value` without the characters no XML 1.0 document can contain."""
    return _NOT_XML.sub("", value)


def destination_of(leg: Leg) -> tuple[str, str]:
    """The `<Dial>` noun for a leg and its text: `("Number", "+1...")` or `("Sip", "sip:...")`."""
    destination = leg.destination.strip()
    if _E164.fullmatch(destination):
        return "Number", destination
    scheme, _, rest = destination.partition(":")
    if f"{scheme.lower()}:" in _SIP_SCHEMES and is_printable_word(rest):
        return "Sip", destination
    raise ValueError(f"leg destination is neither E.164 nor a SIP URI: {shown(leg.destination)}")


def is_printable_word(text: str) -> bool:
    """Whether `text` is non-empty, printable and without spaces (a URI, an id)."""
    return bool(text) and text.isprintable() and not any(c.isspace() for c in text)


def ring_timeout_of(leg: Leg) -> int:
    if leg.ring_timeout < 1:
        raise ValueError(f"leg ring timeout is not positive: {leg.ring_timeout}")
    return leg.ring_timeout


def call_sid_of(form: Mapping[str, str]) -> str:
    """The form's `CallSid`: printable, no spaces, at most `MAX_SID` characters."""
    raw = form.get("CallSid")
    if raw is None or not raw.strip():
        raise ValueError("CallSid is missing")
    sid = raw.strip()
    if len(sid) > MAX_SID or not is_printable_word(sid):
        raise ValueError(f"CallSid is not a call id: {shown(raw)}")
    return sid


def caller_of(raw: str | None) -> str | None:
    """`From` as E.164; None when withheld, a client or SIP identity, blank or not a number."""
    if raw is None or raw.strip().lower() in WITHHELD:
        return None
    return to_e164(raw)


def dialled_of(raw: str | None) -> str:
    """`To` as E.164."""
    if raw is None or not raw.strip():
        raise ValueError("To is missing")
    e164 = to_e164(raw)
    if e164 is None:
        raise ValueError(f"To is not a phone number: {shown(raw)}")
    return e164


def status_of(field: str, raw: str) -> CallStatus:
    """A status field's value as a `CallStatus` (case and surrounding spaces ignored)."""
    text = raw.strip().lower()
    if field == "DialCallStatus" and text in DIAL_ALIASES:
        return DIAL_ALIASES[text]
    try:
        return CallStatus(text)
    except ValueError:
        raise ValueError(f"{field} is not a call status: {shown(raw)}") from None


def duration_of(field: str, raw: str | None) -> int | None:
    """A duration field's whole seconds (ASCII digits only); None when absent or blank."""
    if raw is None or not raw.strip():
        return None
    if not _DURATION.fullmatch(raw.strip()):
        raise ValueError(f"{field} is not a whole number of seconds: {shown(raw)}")
    return int(raw)


def shown(value: str) -> str:
    """`value` quoted for an error message, cut to `MAX_SHOWN` characters."""
    return repr(value[:MAX_SHOWN])
