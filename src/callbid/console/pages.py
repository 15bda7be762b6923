"""The look-up page of one request (what was sent, answered and decided, target by target),
the page of one call (its flow), and the replay of a request against today's configuration."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from callbid.adapters.storage import tables as t
from callbid.adapters.storage.calls import call_of_reservation
from callbid.adapters.storage.reservations import get_reservation
from callbid.api.auth import runtime_of
from callbid.api.calls import call_view
from callbid.api.render import legacy_body, rtb_body
from callbid.console.auth import checked_form, console_principal
from callbid.console.templating import render
from callbid.domain.errors import NotFound
from callbid.service.ping import answer_of_row, effective_status
from callbid.service.replay import replay_reservation
from callbid.service.users import Principal

#: A buyer's raw answer is shown up to this many characters.
BODY_SHOWN = 300


def prefers_html(accept: str) -> bool:
    """Whether an `Accept` header ranks HTML above JSON (ties go to JSON, the API's default)."""
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranks[media.lower()] = max(quality, ranks.get(media.lower(), 0.0))
    html = ranks.get("text/html", 0.0)
    json = max(ranks.get("application/json", 0.0), ranks.get("*/*", 0.0) - 0.001)
    return html > 0 and html > json


async def _owned_reservation(request: Request, principal: Principal, uuid: str) -> t.Reservation:
    async with runtime_of(request).sessions() as session:
        row = await get_reservation(session, uuid.lower())
    if row is None or row.company_id != principal.company_id:
        raise NotFound("reservation not found")
    return row


async def lookup_page(
    request: Request, uuid: str, principal: Principal, replay: dict[str, Any] | None = None
) -> Response:
    runtime = runtime_of(request)
    row = await _owned_reservation(request, principal, uuid)
    async with runtime.sessions() as session:
        call = await call_of_reservation(session, row.uuid)
        campaign = await session.get(t.Campaign, row.campaign_id)
        key = await session.get(t.RtbKey, row.key)
        criteria = (
            await session.scalars(
                select(t.ConversionCriterion).where(
                    t.ConversionCriterion.id.in_([int(c) for c in row.matched_criteria])
                )
            )
        ).all()
    now = runtime.clock()
    answered = "reserved" if row.expires_at is not None else row.status
    answer = replace(answer_of_row(row, answered), reason_code=row.reason_code)
    public = legacy_body(answer) if row.api == "legacy" else rtb_body(answer)
    ttl = (row.expires_at - row.created_at).total_seconds() if row.expires_at else None
    return render(
        request,
        "lookup.html",
        principal,
        row=row,
        status=effective_status(row, now),
        public=public,
        campaign=campaign,
        key=key,
        ttl=ttl,
        seconds_left=(row.expires_at - now).total_seconds() if row.expires_at else None,
        criteria=criteria,
        log=[_log_row(entry) for entry in row.decision_log],
        call=call,
        replay=replay,
    )


def _log_row(entry: dict[str, Any]) -> dict[str, Any]:
    ping = entry.get("ping") or {}
    body = ping.get("body")
    if isinstance(body, str) and len(body) > BODY_SHOWN:
        body = body[:BODY_SHOWN] + "…"
    return {**entry, "ping": ping or None, "body": body}


async def replay_page(
    request: Request, uuid: str, principal: Principal = Depends(console_principal)
) -> Response:
    """The look-up page with the request run again through today's configuration."""
    await checked_form(request, principal)
    replayed = await replay_reservation(runtime_of(request), principal.company_id, uuid.lower())
    return await lookup_page(request, uuid, principal, replay=replayed.as_dict())


async def call_page(
    request: Request, uuid: str, principal: Principal = Depends(console_principal)
) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        call = await session.get(t.Call, uuid.lower())
        if call is None or call.company_id != principal.company_id:
            raise NotFound("call not found")
        campaign = await session.get(t.Campaign, call.campaign_id)
        found = await session.execute(
            select(t.Target.id, t.Target.name).where(t.Target.company_id == principal.company_id)
        )
        names = {target_id: name for target_id, name in found.all()}
    return render(
        request,
        "call.html",
        principal,
        call=call,
        view=call_view(call),
        campaign=campaign,
        target_names=names,
    )
