"""`/passthrough-trials`: ping a buyer's API once from a passthrough configuration, to see
what it answers before any publisher depends on it (nothing reserved or recorded)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from callbid.api.admin.common import ERRORS, CompanyId
from callbid.api.auth import runtime_of
from callbid.domain.errors import InvalidInput
from callbid.service.admin.fields import InModel
from callbid.service.admin.passthrough import PassthroughIn
from callbid.service.trial import try_passthrough

router = APIRouter(prefix="/passthrough-trials", tags=["passthrough"], responses=ERRORS)


class TrialIn(InModel):
    passthrough: PassthroughIn
    tags: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        description="tags of the sample ping, over "
        "caller_zip 10001, caller_state NY, caller_city New York (caller +12125550123)",
    )


class RequestOut(BaseModel):
    method: str
    url: str
    headers: dict[str, str]
    body: str | None


class TrialOut(BaseModel):
    """The request as sent, and the buyer's answer as a real ping would read it."""

    request: RequestOut
    outcome: str = Field(description="accepted, declined, error, timeout or skipped")
    accepted: bool
    bid: float | None
    number: str | None
    seconds: int | None
    detail: str | None = Field(description="why it was declined or failed")
    http_status: int | None
    latency_ms: float | None
    body: str | None = Field(description="the buyer's answer, truncated")


@router.post("", response_model=TrialOut, summary="Ping a buyer's API once (a trial)")
async def run_trial(body: TrialIn, request: Request, _company_id: CompanyId) -> dict[str, Any]:
    runtime = runtime_of(request)
    refused = await runtime.outbound.refusal(body.passthrough.url)
    if refused is not None:
        raise InvalidInput(f"passthrough.url: {refused}")
    trial = await try_passthrough(runtime, body.passthrough.stored(), body.tags)
    return trial.as_dict()
