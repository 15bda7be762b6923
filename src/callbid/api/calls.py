"""`/api/v1/calls`: the plain JSON call-event API for any switch (FreeSWITCH, Asterisk, a SIP
proxy), with the same semantics as the Twilio dialect, and the owner's view of a call.

A switch reports a call's start (it is answered with where to send it: a destination, its
ring timeout and the fallbacks, in order), a leg that did not answer (answered with what is
left), the leg that connected, and the end with the connected seconds. Authenticated with the
company's bearer token; the dialled number must be one of the company's tracking numbers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callbid.adapters.phone import to_e164
from callbid.adapters.storage.calls import call_by_sid
from callbid.adapters.storage.tables import Call
from callbid.api.admin.common import ERRORS, CompanyId, Session
from callbid.api.auth import runtime_of
from callbid.api.render import iso_ms
from callbid.domain.calls import CallStarted
from callbid.domain.errors import InvalidInput, NotFound
from callbid.runtime import Runtime
from callbid.service.calls import (
    CallAnswer,
    call_ended,
    leg_answered,
    leg_dict,
    leg_failed,
    start_call,
)
from callbid.service.configs import LineConfig

router = APIRouter(prefix="/calls", tags=["calls"], responses=ERRORS)

CallId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]


class CallIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    call_id: CallId = Field(description="the switch's id of the call (unique per company)")
    from_: str | None = Field(
        None, alias="from", max_length=64, description="caller number; null when withheld"
    )
    to: str = Field(max_length=64, description="the dialled tracking number")
    tags: dict[str, Annotated[str, Field(max_length=2048)]] = Field(
        default_factory=dict, max_length=100, description="caller facts, e.g. caller_zip"
    )


class LegFailedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(
        pattern="^(busy|no-answer|failed|canceled)$", description="why the leg did not talk"
    )


class ConnectedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_id: int | None = Field(
        None, description="the target that answered, when the switch went down the fallbacks"
    )


class EndedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connected_seconds: int = Field(ge=0, le=10**7, description="talk time of the connected leg")
    duration_seconds: int | None = Field(None, ge=0, le=10**7, description="whole call")


def _routing(answer: CallAnswer) -> dict[str, Any]:
    legs = [leg_dict(leg) for leg in answer.route.legs]
    return {
        "call_uuid": answer.call_uuid,
        "status": answer.status,
        "match": answer.match,
        "reservation_uuid": answer.reservation_uuid,
        "destination": legs[0]["destination"] if legs else None,
        "ring_timeout": legs[0]["ring_timeout"] if legs else None,
        "legs": legs,
        "fallback": None if legs else answer.route.fallback,
    }


async def _line(runtime: Runtime, company_id: int, number: str | None) -> LineConfig:
    e164 = to_e164(number or "")
    if e164 is None:
        raise InvalidInput("to is not a phone number")
    line = await runtime.configs.line(e164)
    if line is None or line.campaign.company_id != company_id:
        raise NotFound("no campaign of yours has this number")
    return line


async def _line_of_call(request: Request, company_id: int, call_id: str) -> LineConfig:
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        found = await call_by_sid(session, company_id, call_id)
    if found is None:
        raise NotFound("call not found")
    return await _line(runtime, company_id, found.dialled_number)


@router.post("", summary="A call started: where to send it")
async def call_started(body: CallIn, request: Request, company_id: CompanyId) -> dict[str, Any]:
    runtime = runtime_of(request)
    line = await _line(runtime, company_id, body.to)
    caller = to_e164(body.from_) if body.from_ else None
    started = CallStarted(call_sid=body.call_id, caller=caller, dialled=line.number)
    answer = await start_call(runtime, line, started, dialect="json", tags=body.tags)
    return _routing(answer)


@router.post("/{call_id}/leg_failed", summary="The leg being dialled did not answer")
async def call_leg_failed(
    call_id: str, body: LegFailedIn, request: Request, company_id: CompanyId
) -> dict[str, Any]:
    line = await _line_of_call(request, company_id, call_id)
    return _routing(await leg_failed(runtime_of(request), line, call_id, body.status))


@router.post("/{call_id}/connected", summary="A leg answered: the call is connected")
async def call_connected(
    call_id: str, body: ConnectedIn, request: Request, company_id: CompanyId
) -> dict[str, Any]:
    line = await _line_of_call(request, company_id, call_id)
    answer = await leg_answered(runtime_of(request), line, call_id, body.target_id)
    return _routing(answer)


@router.post("/{call_id}/ended", summary="The call ended: conversion is decided")
async def call_end(
    call_id: str, body: EndedIn, request: Request, company_id: CompanyId
) -> dict[str, Any]:
    line = await _line_of_call(request, company_id, call_id)
    runtime = runtime_of(request)
    await call_ended(
        runtime,
        line,
        call_id,
        connected_seconds=body.connected_seconds,
        duration_seconds=body.duration_seconds,
    )
    async with runtime.sessions() as session:
        found = await call_by_sid(session, company_id, call_id)
    assert found is not None
    return call_view(found)


@router.get("", summary="Find calls by the switch's call id or by reservation")
async def find_calls(
    session: Session,
    company_id: CompanyId,
    call_sid: Annotated[str | None, Query(max_length=128)] = None,
    reservation_uuid: Annotated[str | None, Query(max_length=36)] = None,
) -> list[dict[str, Any]]:
    query = select(Call).where(Call.company_id == company_id)
    if call_sid is not None:
        query = query.where(Call.call_sid == call_sid)
    if reservation_uuid is not None:
        query = query.where(Call.reservation_uuid == reservation_uuid)
    rows = (await session.scalars(query.order_by(Call.started_at.desc()).limit(100))).all()
    return [call_view(row) for row in rows]


@router.get("/{call_uuid}", summary="A call, its outcome and its call flow")
async def read_call(call_uuid: str, session: Session, company_id: CompanyId) -> dict[str, Any]:
    row = await session.get(Call, call_uuid)
    if row is None or row.company_id != company_id:
        raise NotFound("call not found")
    return call_view(row)


def call_view(row: Call) -> dict[str, Any]:
    """A call as its owner sees it: facts, outcome, and the flow that explains it."""
    return {
        "uuid": row.uuid,
        "call_sid": row.call_sid,
        "dialect": row.dialect,
        "campaign_id": row.campaign_id,
        "caller_number": row.caller_number,
        "dialled_number": row.dialled_number,
        "publisher_id": row.publisher_id,
        "reservation_uuid": row.reservation_uuid,
        "match": row.match,
        "status": row.status,
        "target_id": row.target_id,
        "destination": row.destination,
        "tags": row.tags,
        "started_at": iso_ms(row.started_at),
        "connected_at": iso_ms(row.connected_at),
        "ended_at": iso_ms(row.ended_at),
        "connected_seconds": row.connected_seconds,
        "duration_seconds": row.duration_seconds,
        "converted": row.converted,
        "criterion_id": row.criterion_id,
        "payout": row.payout,
        "revenue": row.revenue,
        "conversion_info": row.conversion_info,
        "flow": row.flow,
    }
