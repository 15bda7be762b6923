"""Carrier webhooks: Twilio's voice dialect (forms or queries, `X-Twilio-Signature`, TwiML).

Point a Twilio number's voice webhook at `/twilio/voice` and its status callback at
`/twilio/status`, as POST (a form) or GET (the query string, signed as part of the URL); the
TwiML answers name `/twilio/dial` (a dial's outcome) and `/twilio/leg` (the dialled leg
answered) themselves, with `?line=<tracking number>` so that every callback finds its company
before its signature is checked. Every request must be signed with the auth token of the
company owning the dialled number (403 otherwise, whatever is missing, and nothing changes);
behind a proxy, set `CALLBID_PUBLIC_URL` to the URL Twilio calls.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from typing import cast
from urllib.parse import quote

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
FORBIDDEN = "invalid or missing X-Twilio-Signature"
#: A dial that ended without talking: the next leg is tried.
NOT_ANSWERED = frozenset(
    {CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED, CallStatus.CANCELED}
)
ENDED = NOT_ANSWERED | {CallStatus.COMPLETED}
MAX_FORM_FIELDS = 200

Handler = Callable[[Request, Runtime, LineConfig, dict[str, str]], Awaitable[Response]]


def routes() -> list[BaseRoute]:
    return [
        _route("/twilio/voice", voice, "To"),
        _route("/twilio/dial", dial_outcome, None),
        _route("/twilio/leg", leg_status, None),
        _route("/twilio/status", call_status, "To"),
    ]


def _route(path: str, handler: Handler, number_field: str | None) -> Route:
    """A webhook served alike as POST (a form) and GET (a query), as the console sets it."""
    route = Route(path, _webhook(handler, number_field), methods=["GET", "POST"])
    assert route.methods is not None
    # Starlette answers HEAD for every GET route; a webhook acts, so HEAD is a 405.
    route.methods.discard("HEAD")
    return route


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
    """Read the fields (the form of a POST, the query of a GET), find the dialled line (from
    `number_field`, else `?line=`), check the signature against its company's token, then run
    `handler`. A request not validly signed is a 403, whatever it lacks, and changes nothing;
    only a signed one may hear what is wrong with its content (400, plain text)."""

    async def endpoint(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        try:
            read = await _read_fields(request)
            if read is None:
                return Response(FORBIDDEN, status_code=403)
            fields, signed = read
            line = await _signed_line(request, runtime, number_field, fields, signed)
            if line is None:
                return Response(FORBIDDEN, status_code=403)
            return await handler(request, runtime, line, fields)
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


async def _read_fields(request: Request) -> tuple[dict[str, str], Mapping[str, str]] | None:
    """The webhook's fields and what Twilio signed besides the URL: a POST's form (Starlette's
    multi-dict, so that every value of a repeated field is signed), nothing for a GET, whose
    fields are in the signed URL's query. None when the form cannot be read."""
    if request.method == "GET":
        return {k: v for k, v in request.query_params.items()}, {}
    try:
        form = await request.form(max_fields=MAX_FORM_FIELDS)
    except Exception:
        return None
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return fields, cast("Mapping[str, str]", form)


async def _signed_line(
    request: Request,
    runtime: Runtime,
    number_field: str | None,
    fields: Mapping[str, str],
    signed: Mapping[str, str],
) -> LineConfig | None:
    """The dialled line when the request is signed with its company's carrier token; None
    when anything is missing or wrong (the signature, the line, the company's token)."""
    signature = request.headers.get(SIGNATURE)
    if not signature:
        return None
    raw = request.query_params.get("line")
    if raw is None and number_field is not None:
        raw = fields.get(number_field)
    try:
        number = dialled_of(raw)
    except ValueError:
        return None
    line = await runtime.configs.line(number)
    if line is None or line.carrier_token is None:
        return None
    if not is_signed(line.carrier_token, signed_url(request, runtime), signed, signature):
        return None
    return line


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


async def voice(
    request: Request, runtime: Runtime, line: LineConfig, fields: dict[str, str]
) -> Response:
    """An incoming call: TwiML dialling its reserved (or routed) target."""
    answer = await start_call(
        runtime, line, call_started(fields), dialect="twilio", tags=caller_tags(fields)
    )
    return route_twiml(request, runtime, line, answer)


async def dial_outcome(
    request: Request, runtime: Runtime, line: LineConfig, fields: dict[str, str]
) -> Response:
    """A `<Dial>` finished: it talked (the call ends and converts or not), or it did not
    answer (the next leg is dialled)."""
    progress = call_progress(fields)
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
    request: Request, runtime: Runtime, line: LineConfig, fields: dict[str, str]
) -> Response:
    """The dialled leg's status callback: `in-progress` (answered) connects the call."""
    parent = fields.get("ParentCallSid") or None
    sid = call_sid_of({"CallSid": parent}) if parent else call_sid_of(fields)
    status = fields.get("CallStatus", "").strip().lower()
    if status in ("in-progress", "answered"):
        await leg_answered(runtime, line, sid)
    return empty()


async def call_status(
    request: Request, runtime: Runtime, line: LineConfig, fields: dict[str, str]
) -> Response:
    """The call's status callback: an ended call ends (with its duration)."""
    progress = call_progress(fields)
    if progress.status in ENDED:
        await call_ended(
            runtime,
            line,
            progress.call_sid,
            connected_seconds=None,
            duration_seconds=progress.duration_seconds,
        )
    return empty()
