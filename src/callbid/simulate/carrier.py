"""The carrier's side of Twilio's voice webhooks: reading TwiML as Twilio does, signing each
webhook, and placing one call through them.

A call is four kinds of signed, form-encoded POST: the incoming call (`/twilio/voice`), the
dialled leg answering (to the `<Number statusCallback>`), the dial's outcome (to the `<Dial
action>`) and the call's end (`/twilio/status`). Talk time is simulated: the outcome is sent as
soon as the leg answered, with the drawn duration.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

import httpx
from twilio.request_validator import RequestValidator

from callbid.simulate.traffic import MAX_LEGS, Caller, Script

API_VERSION = "2010-04-01"
#: Seconds a dialled leg rings before it answers (a leg that does not rings its timeout).
RING_SECONDS = 4


@dataclass(frozen=True, slots=True)
class Dial:
    """A TwiML `<Dial>`: where to ring, for how long, and where to report (absolute URLs)."""

    destination: str
    timeout: int
    action: str | None
    method: str
    status_callback: str | None
    status_callback_method: str


def parse_twiml(text: str, base_url: str) -> Dial | None:
    """The first `<Dial>` of a TwiML document, URLs resolved against `base_url` (the URL the
    document answered), as Twilio reads it; None when the document hangs up without dialling.

    Raises ValueError when `text` is not a TwiML `<Response>` or its `<Dial>` has nothing to
    dial."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if root.tag != "Response":
        raise ValueError(f"not TwiML: the root element is <{root.tag}>")
    for verb in root:
        if verb.tag == "Dial":
            return _dial_of(verb, base_url)
        if verb.tag in ("Hangup", "Reject"):
            return None
    return None


def _dial_of(verb: ET.Element, base_url: str) -> Dial:
    noun = next((child for child in verb if child.tag in ("Number", "Sip", "Client")), None)
    destination = ((noun.text if noun is not None else verb.text) or "").strip()
    if not destination:
        raise ValueError("<Dial> has nothing to dial")
    action = verb.get("action")
    callback = noun.get("statusCallback") if noun is not None else None
    return Dial(
        destination=destination,
        timeout=int(verb.get("timeout", "30")),
        action=urljoin(base_url, action) if action else None,
        method=verb.get("method", "POST").upper(),
        status_callback=urljoin(base_url, callback) if callback else None,
        status_callback_method=(
            noun.get("statusCallbackMethod", "POST") if noun is not None else "POST"
        ).upper(),
    )


def new_sid(prefix: str = "CA") -> str:
    """A Twilio-shaped id, two letters and 32 hex digits, unique: the server keys calls by
    theirs, so a replayed run (same seed) must not reuse one."""
    return prefix + uuid.uuid4().hex


def sign(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    """Twilio's `X-Twilio-Signature` of a form POSTed to `url` (exactly as posted)."""
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(form))
    return signature


@dataclass(frozen=True, slots=True)
class Placed:
    """A call placed: its talk seconds (None: no leg answered) and when the server had answered
    the incoming call (None: it did not), which bounds when the server saw it arrive."""

    talk: int | None
    answered_at: datetime | None


class Carrier:
    """Places calls on a callbid server as Twilio would, through `client`.

    A webhook answered with anything but 200 (or not at all) is reported to `error` by method,
    path and status (a 403 also names `token_source`, where the signing token came from), and
    ends what depends on its answer; the call's end is still reported."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        auth_token: str,
        account_sid: str,
        error: Callable[[str], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        token_source: str = "from --carrier-token",
    ) -> None:
        self.client = client
        #: Where `auth_token` came from, named when the server refuses a signature.
        self.token_source = token_source
        self.base = base_url.rstrip("/")
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.error = error
        self.clock = clock

    async def place_call(
        self, caller: Caller, dialled: str, script: Script, sid: str | None = None
    ) -> Placed:
        """One call from `caller` to `dialled`: its legs ring (the first `script.unanswered`
        do not answer) until one talks for `script.talk_seconds` or the server hangs up."""
        common = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": sid or new_sid(),
            "From": caller.number,
            "To": dialled,
            "Direction": "inbound",
            "FromZip": caller.zip_code,
            "FromState": caller.state,
            "FromCountry": "US",
        }
        url = f"{self.base}/twilio/voice"
        twiml = await self.post(url, common | {"CallStatus": "ringing"})
        answered_at = None if twiml is None else self.clock()
        talk, seconds = None, 0
        for leg in range(MAX_LEGS):
            dial = self._dial_of(twiml, url)
            if dial is None:
                break
            answered = leg >= script.unanswered
            leg_sid = new_sid()
            seconds += RING_SECONDS if answered else dial.timeout
            outcome = {"DialCallSid": leg_sid, "DialCallStatus": "no-answer"}
            if answered:
                talk = script.talk_seconds
                seconds += talk
                await self._leg_answered(dial, common, leg_sid)
                outcome |= {"DialCallStatus": "completed", "DialCallDuration": str(talk)}
            if dial.action is None:
                break
            url = dial.action
            progress = common | {"CallStatus": "in-progress"} | outcome
            twiml = await self.post(url, progress, dial.method)
            if answered:
                break  # the caller hangs up after talking: what the server answers is not run
        end = common | {"CallStatus": "completed", "CallDuration": str(seconds)}
        await self.post(f"{self.base}/twilio/status", end)
        return Placed(talk, answered_at)

    def _dial_of(self, twiml: str | None, url: str) -> Dial | None:
        if twiml is None:
            return None
        try:
            return parse_twiml(twiml, url)
        except ValueError as exc:
            self.error(f"TwiML from {httpx.URL(url).path}: {exc}")
            return None

    async def _leg_answered(self, dial: Dial, common: Mapping[str, str], leg_sid: str) -> None:
        if dial.status_callback is None:
            return
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": leg_sid,
            "ParentCallSid": common["CallSid"],
            "CallStatus": "in-progress",
            "From": common["From"],
            "To": dial.destination,
            "Direction": "outbound-dial",
            "CallbackSource": "call-progress-events",
        }
        await self.post(dial.status_callback, form, dial.status_callback_method)

    async def post(self, url: str, form: Mapping[str, str], method: str = "POST") -> str | None:
        """A webhook signed as Twilio signs it (a GET carries the form in its query); the
        answer's text when it is 200, None otherwise."""
        target = httpx.URL(url)
        path = target.path
        query, body = (dict(form), {}) if method == "GET" else ({}, dict(form))
        # Signed as httpx sends it, which may re-encode what the TwiML gave.
        url = str(target.copy_merge_params(query))
        headers = {"X-Twilio-Signature": sign(self.auth_token, url, body)}
        try:
            response = await self.client.request(method, url, data=body or None, headers=headers)
        except httpx.TransportError as exc:
            self.error(f"{method} {path} {type(exc).__name__}")
            return None
        if response.status_code == 403:
            self.error(f"{method} {path} 403 (signed with the carrier token {self.token_source})")
            return None
        if response.status_code != 200:
            self.error(f"{method} {path} {response.status_code}")
            return None
        return response.text
