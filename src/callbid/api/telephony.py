"""Carrier webhooks: Twilio's voice dialect (form posts, `X-Twilio-Signature`, TwiML answers).

Point a Twilio number's voice webhook at `POST /twilio/voice` and its status callback at
`POST /twilio/status`; the TwiML answers name `/twilio/dial` (a dial's outcome) and
`/twilio/leg` (the dialled leg answered) themselves, with `?line=<tracking number>` so that
every callback finds its company before its signature is checked. Every request must be
signed with the auth token of the company owning the dialled number (403 otherwise, and
nothing changes); behind a proxy, set `CALLBID_PUBLIC_URL` to the URL Twilio calls.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from typing import cast
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from callbid.adapters.telephony.twilio import (
    CONTENT_TYPE,
    call_progress,
    call_sid_of,
    call_started,
    caller_tags,
    dialled_of,
    is_signed,
    render,
    twiml_dial,
    twiml_hangup,
)
from callbid.api.errors import error_response, outage_response
from callbid.domain.calls import CallStatus
from callbid.domain.errors import CallbidError
from callbid.runtime import Runtime
from callbid.service.calls import CallAnswer, call_ended, leg_answered, leg_failed, start_call
from callbid.service.configs import LineConfig

SIGNATURE = "X-Twilio-Signature"
#: A dial that ended without talking: the next leg is tried.
NOT_ANSWERED = frozenset(
    {CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED, CallStatus.CANCELED}
)
ENDED = NOT_ANSWERED | {CallStatus.COMPLETED}
MAX_FORM_FIELDS = 200

Handler = Callable[[Request, Runtime, LineConfig, FormData], Awaitable[Response]]


def routes() -> list[BaseRoute]:
    return [
        Route("/twilio/voice", _webhook(voice, "To"), methods=["POST"]),
        Route("/twilio/dial", _webhook(dial_outcome, None), methods=["POST"]),
        Route("/twilio/leg", _webhook(leg_status, None), methods=["POST"]),
        Route("/twilio/status", _webhook(call_status, "To"), methods=["POST"]),
    ]


def twiml(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=CONTENT_TYPE)


def empty() -> Response:
    return twiml(render(ET.Element("Response")))


def signed_url(request: Request, runtime: Runtime) -> str:
    """The URL the carrier requested, as it signed it."""
    public = runtime.settings.public_url
    if public is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return public.rstrip("/") + request.url.path + query


def base_url(request: Request, runtime: Runtime) -> str:
    public = runtime.settings.public_url
    if public is not None:
        return public.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def _webhook(
    handler: Handler, number_field: str | None
) -> Callable[[Request], Awaitable[Response]]:
    """Read the form, find the dialled line (from `number_field`, else `?line=`), check the
    signature against its company's token, then run `handler`; errors as plain text."""

    async def endpoint(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        try:
            form = await request.form(max_fields=MAX_FORM_FIELDS)
            raw = request.query_params.get("line")
            if raw is None and number_field is not None:
                raw = form.get(number_field)  # type: ignore[assignment]
            try:
                number = dialled_of(raw if isinstance(raw, str) else None)
            except ValueError as exc:
                return Response(f"unknown line: {exc}", status_code=400)
            line = await runtime.configs.line(number)
            if line is None:
                return Response("no campaign has this number", status_code=404)
            signature = request.headers.get(SIGNATURE)
            token = line.carrier_token
            # Starlette's multi-dict, so that every value of a repeated field is signed.
            signed = cast("Mapping[str, str]", form)
            if token is None or not is_signed(
                token, signed_url(request, runtime), signed, signature
            ):
                return Response("invalid or missing X-Twilio-Signature", status_code=403)
            return await handler(request, runtime, line, form)
        except ValueError as exc:
            return Response(str(exc), status_code=400)
        except CallbidError as exc:
            return error_response(exc)
        except Exception as exc:
            outage = outage_response(exc)
            if outage is None:
                raise
            return outage

    return endpoint


def route_twiml(
    request: Request, runtime: Runtime, line: LineConfig, answer: CallAnswer
) -> Response:
    if not answer.route.legs:
        return twiml(twiml_dial(answer.route, ""))
    base = base_url(request, runtime)
    suffix = f"?line={quote(line.number)}"
    return twiml(
        twiml_dial(answer.route, f"{base}/twilio/dial{suffix}", f"{base}/twilio/leg{suffix}")
    )


async def voice(request: Request, runtime: Runtime, line: LineConfig, form: FormData) -> Response:
    """An incoming call: TwiML dialling its reserved (or routed) target."""
    fields = _fields(form)
    answer = await start_call(
        runtime, line, call_started(fields), dialect="twilio", tags=caller_tags(fields)
    )
    return route_twiml(request, runtime, line, answer)


async def dial_outcome(
    request: Request, runtime: Runtime, line: LineConfig, form: FormData
) -> Response:
    """A `<Dial>` finished: it talked (the call ends and converts or not), or it did not
    answer (the next leg is dialled)."""
    progress = call_progress(_fields(form))
    if progress.dial_status is CallStatus.COMPLETED:
        await call_ended(
            runtime, line, progress.call_sid, connected_seconds=progress.dial_duration_seconds
        )
        return twiml(twiml_hangup())
    if progress.dial_status in NOT_ANSWERED:
        answer = await leg_failed(runtime, line, progress.call_sid, str(progress.dial_status))
        return route_twiml(request, runtime, line, answer)
    return twiml(twiml_hangup())


async def leg_status(
    request: Request, runtime: Runtime, line: LineConfig, form: FormData
) -> Response:
    """The dialled leg's status callback: `in-progress` (answered) connects the call."""
    fields = _fields(form)
    parent = fields.get("ParentCallSid") or None
    sid = call_sid_of({"CallSid": parent}) if parent else call_sid_of(fields)
    status = fields.get("CallStatus", "").strip().lower()
    if status in ("in-progress", "answered"):
        await leg_answered(runtime, line, sid)
    return empty()


async def call_status(
    request: Request, runtime: Runtime, line: LineConfig, form: FormData
) -> Response:
    """The call's status callback: an ended call ends (with its duration)."""
    progress = call_progress(_fields(form))
    if progress.status in ENDED:
        await call_ended(
            runtime,
            line,
            progress.call_sid,
            connected_seconds=None,
            duration_seconds=progress.duration_seconds,
        )
    return empty()


def _fields(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}
