"""Pixel (webhook) commands and views: the Create/Update/Out trio, and the deliveries with
their attempts.

URL, headers and content type are checked by the same rules as a buyer's passthrough
(`adapters/buyers/templates.py`); `[tokens]` may stand anywhere in the URL, header values and
body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from callbid.adapters.buyers.templates import (
    MAX_BODY,
    MAX_HEADERS,
    MAX_URL,
    body_of,
    content_type_of,
    headers_of,
    url_of,
)
from callbid.domain.pixels import DEFAULT_CONTENT_TYPE, PixelEvent
from callbid.service.admin.fields import (
    UNSET,
    CampaignId,
    Filters,
    InModel,
    OptionalName,
    OutModel,
    PatchModel,
    TagFilterOut,
)

#: Headers the HTTP client writes itself: a template must not send them twice.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Names RFC 9110 tokens, values without CR, LF or controls, none the client writes."""
    checked = dict(headers_of(headers))
    taken = sorted(name for name in checked if name.lower() in RESERVED_HEADERS)
    if taken:
        raise ValueError(f"set by the HTTP client itself: {', '.join(taken)}")
    return checked


Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Url = Annotated[
    str,
    Field(max_length=MAX_URL, description="http(s) URL; may contain [tokens]"),
    AfterValidator(url_of),
]
Headers = Annotated[
    dict[str, str],
    Field(max_length=MAX_HEADERS, description="header name: value template"),
    AfterValidator(check_headers),
]
ContentType = Annotated[
    str,
    Field(max_length=200, description="media type of the body; decides how tokens are escaped"),
    AfterValidator(content_type_of),
]
Body = Annotated[
    str | None,
    Field(max_length=MAX_BODY, description="body template (JSON when content_type is); null: none"),
]


def check_body(body: str | None, content_type: str) -> str | None:
    """`body` when it fits `content_type` (JSON that parses, tokens read as 0); ValueError."""
    try:
        return body_of(body, content_type)
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("body: ")) from None


class WebhookCreate(InModel):
    """A pixel: an HTTP request sent when `event` happens on the campaign and every condition
    passes (conditions read tags and tokens, as target filters do). Delivered at least once: a
    receiver that fails or is slow is tried again with exponential backoff, every attempt
    recorded.

    In the URL, header values and body, `[token]` is replaced by its value, escaped for where
    it stands (URL-encoded in the URL, JSON-escaped in a JSON body, form-encoded in a form
    body, without CR/LF in headers); an unknown token is empty. Tokens: `event`,
    `reservation_uuid`, `call_uuid`, `uuid` (the call's, else the reservation's),
    `caller_number` (E.164), `caller_number_digits`, `caller_number_nanp`, `publisher_id`,
    `payout` and `revenue` (`12.50`), `inbound_number`, `target_id`, `campaign_id`, and every
    tag of the ping or call (`caller_zip`, ...).
    """

    campaign_id: CampaignId
    name: OptionalName = ""
    event: PixelEvent = Field(
        description="reserved, call_started, answered (the buyer picked up), converted, "
        "expired (the reservation's TTL passed without a call)"
    )
    method: Method = "POST"
    url: Url
    headers: Headers = Field(default_factory=dict)
    content_type: ContentType = DEFAULT_CONTENT_TYPE
    body: Body = None
    conditions: Filters = Field(default_factory=list)
    enabled: bool = Field(True, description="a disabled pixel does not fire")

    @field_validator("body")
    @classmethod
    def _body_fits(cls, body: str | None, info: ValidationInfo) -> str | None:
        return check_body(body, info.data.get("content_type", DEFAULT_CONTENT_TYPE))


class WebhookUpdate(PatchModel):
    """Pixel fields to change; the changes apply to events from now on (what is queued
    already is sent as it was rendered)."""

    campaign_id: CampaignId = Field(UNSET)
    name: OptionalName = Field(UNSET)
    event: PixelEvent = Field(UNSET)
    method: Method = Field(UNSET)
    url: Url = Field(UNSET)
    headers: Headers = Field(UNSET)
    content_type: ContentType = Field(UNSET)
    body: Body = Field(UNSET)
    conditions: Filters = Field(UNSET)
    enabled: bool = Field(UNSET)


class WebhookOut(OutModel):
    """A pixel."""

    id: int
    campaign_id: int
    name: str
    event: PixelEvent
    method: str
    url: str
    headers: dict[str, str]
    content_type: str | None
    body: str | None
    conditions: list[TagFilterOut]
    enabled: bool


class AttemptOut(OutModel):
    """One attempt at a delivery: the receiver's HTTP status, or what went wrong."""

    at: datetime
    http_status: int | None
    error: str | None = Field(description="`http 500`, `timeout`, `connect failed`, ...")
    latency_ms: float | None


class DeliveryOut(OutModel):
    """A pixel as rendered for one event, and how its delivery goes."""

    id: str
    webhook_id: int | None
    event: str
    subject: str | None = Field(description="the call's uuid, else the reservation's")
    method: str
    url: str
    headers: dict[str, Any]
    body: str | None
    status: Literal["pending", "delivered", "failed"] = Field(
        description="pending (next try at next_attempt_at), delivered, or failed (gave up)"
    )
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut] = Field(description="every attempt, oldest first")
