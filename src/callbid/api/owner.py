"""The campaign owner's look-up of one request: everything that was decided and why."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from callbid.adapters.storage.calls import call_of_reservation
from callbid.adapters.storage.reservations import get_reservation
from callbid.api.auth import bearer, current_company, runtime_of
from callbid.api.calls import call_view
from callbid.api.render import iso_ms
from callbid.console import pages
from callbid.console.auth import console_principal
from callbid.domain.errors import NotFound
from callbid.service.ping import effective_status


def owner_router() -> APIRouter:
    router = APIRouter(tags=["owner"])
    router.add_api_route(
        "/call_reservations/{uuid}",
        lookup_reservation,
        methods=["GET"],
        summary="Why a request was or was not reserved (owner only)",
    )
    return router


async def lookup_reservation(
    uuid: str,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Any:
    """The reservation, its tags, matched criteria, one decision log row per target, and the
    call that claimed it (or was meant for it), with its call flow.

    JSON by default; a browser (`Accept` ranking `text/html` first) gets the console's look-up
    page, signed in by its session cookie or the same bearer token, and is sent to sign in
    without either. Another company's reservation answers 404, exactly like a missing one.
    """
    if pages.prefers_html(request.headers.get("accept", "")) and not uuid.endswith(".json"):
        return await pages.lookup_page(request, uuid, await console_principal(request))
    company_id = await current_company(request, credentials)
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        row = await get_reservation(session, uuid.lower().removesuffix(".json"))
        if row is None or row.company_id != company_id:
            raise NotFound("reservation not found")
        call = await call_of_reservation(session, row.uuid)
    return {
        "uuid": row.uuid,
        "status": effective_status(row, runtime.clock()),
        "stored_status": row.status,
        "api": row.api,
        "campaign_id": row.campaign_id,
        "key": row.key,
        "publisher_id": row.publisher_id,
        "caller_number": row.caller_number,
        "inbound_number": row.inbound_number,
        "destination": row.destination,
        "target_id": row.target_id,
        "payout": row.payout,
        "seconds": row.seconds,
        "revenue": row.revenue,
        "criterion_id": row.criterion_id,
        "matched_criteria": row.matched_criteria,
        "info": row.info,
        "owner_info": row.owner_info,
        "holds_capacity": row.holds,
        "tags": row.tags,
        "created_at": iso_ms(row.created_at),
        "expires_at": iso_ms(row.expires_at),
        "confirmed_at": iso_ms(row.confirmed_at),
        "claimed_at": iso_ms(row.claimed_at),
        "wiped_at": iso_ms(row.wiped_at),
        "decision_log": row.decision_log,
        "call": call_view(call) if call is not None else None,
    }
