"""`/reservations/{uuid}/replay`: would a past request be taken now, on today's configuration?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from callbid.api.admin.common import ERRORS, CompanyId
from callbid.api.auth import runtime_of
from callbid.service.replay import replay_reservation

router = APIRouter(prefix="/reservations", tags=["replay"], responses=ERRORS)


class OriginalOut(BaseModel):
    """The original answer, as stored."""

    status: str = Field(description="stored status: reserved, confirmed, no-target, …")
    info: str | None = Field(description="what the publisher was told")
    owner_info: str | None = Field(description="why, for the owner")
    target_id: int | None
    payout: float | None
    created_at: str = Field(description="when it was asked, ISO-8601 UTC")


class NowOut(BaseModel):
    """What the same request would be answered now."""

    status: str = Field(description="reserved, no-target or rejected")
    info: str | None = Field(description="what the publisher would be told")
    owner_info: str | None = Field(description="why, for the owner")
    target_id: int | None = Field(description="the target that would take it")
    target_name: str | None
    payout: float | None
    reason_code: str | None = Field(description="why not, as a ping's `reason_code`")


class RowOut(BaseModel):
    """One target's decision log outcome in the original and in the replay."""

    target_id: int | None = Field(description="null: the campaign's own passthrough")
    target_name: str
    before: str | None = Field(description="its outcome in the original; null: not in it")
    after: str | None = Field(
        description="its outcome now (`would_ping`: its buyer would be "
        "asked, which a replay does not do); null: no longer in the campaign"
    )
    changed: bool


class ReplayOut(BaseModel):
    uuid: str
    replayed_at: str = Field(description="the instant replayed at, ISO-8601 UTC")
    original: OriginalOut
    now: NowOut
    rows: list[RowOut] = Field(description="every target of either decision")
    decision_log: list[dict[str, Any]] = Field(
        description="the replay's decision log, rows as in the request's look-up"
    )


@router.post(
    "/{uuid}/replay",
    response_model=ReplayOut,
    summary="Replay a request on today's configuration",
    description="Decides the stored request `uuid` again, as a ping would be decided now: "
    "today's targets, hours, filters and caps, and today's live counters. Nothing is reserved, "
    "written or sent: buyers are not pinged (those the original asked answer as they did; "
    "others show `would_ping`), and the request's own reservation is left as it is.",
)
async def replay(uuid: str, request: Request, company_id: CompanyId) -> dict[str, Any]:
    replayed = await replay_reservation(runtime_of(request), company_id, uuid)
    return replayed.as_dict()
