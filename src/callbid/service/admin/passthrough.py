"""The passthrough (a buyer's ping API) of target and campaign commands.

The service stores what the owner sent (a template name and the fields that override it), so a
template's fixes reach every buyer configured from it; `adapters/buyers/templates.py` checks it
and builds the effective configuration.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from callbid.adapters.buyers.templates import passthrough_from
from callbid.domain.buyers import NumberMode
from callbid.service.admin.fields import InModel

Template = Literal["custom", "ringba", "callgrid", "retreaver", "callbid"]


class WithoutNulls(InModel):
    """Serialises only the fields given: what is left out comes from the template."""

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class MappingIn(WithoutNulls):
    """Where the buyer's answer says what: JMESPath expressions over its JSON
    (`bidTerms[0].callMinDuration`) or `re:<regex>` over the raw body."""

    accepted: str | None = Field(
        None, max_length=500, description="accepted when truthy (or one of accepted_values)"
    )
    accepted_values: list[str] | None = Field(None, max_length=50)
    bid: str | None = Field(None, max_length=500)
    number: str | None = Field(
        None, max_length=500, description="dynamic destination: E.164 number or sip: URI"
    )
    seconds: str | None = Field(None, max_length=500, description="conversion buffer seconds")
    reason: str | None = Field(None, max_length=500, description="why the buyer declined")
    reference: str | None = Field(
        None, max_length=500, description="the buyer's id of its reservation (chained engines)"
    )
    bid_multiplier: float | None = Field(None, gt=0, allow_inf_nan=False)
    seconds_offset: int | None = Field(None, ge=-86_400, le=86_400)


class PassthroughIn(WithoutNulls):
    """A buyer's ping API. `template` fills every field it knows (Ringba RTB, CallGrid bid
    API, Retreaver-style RTB, which is callbid's own); the fields given here override it.
    `[token]` in url, headers and body: `caller_number` (E.164), `caller_number_nanp`,
    `caller_number_digits`, `publisher_id`, `uuid`, and every tag of the ping."""

    template: Template = "custom"
    url: str = Field(max_length=2000, description="http(s) URL; may contain [tokens]")
    method: Literal["GET", "POST", "PUT", "PATCH"] | None = None
    headers: dict[str, str] | None = Field(None, max_length=50)
    body: str | None = Field(None, max_length=16_384)
    content_type: str | None = Field(None, max_length=200)
    number_mode: NumberMode | None = Field(
        None,
        description="transfer: the publisher gets the buyer's number as inbound_number; "
        "dial: the publisher gets a tracking number and callbid dials the buyer's number",
    )
    mapping: MappingIn | None = None

    @model_validator(mode="after")
    def _check_effective(self) -> PassthroughIn:
        passthrough_from(self.stored())
        return self

    def stored(self) -> dict[str, Any]:
        """The configuration as stored: only what was given."""
        stored: dict[str, Any] = self.model_dump(mode="json")
        return stored


def passthrough_url(passthrough: PassthroughIn | None) -> str | None:
    return None if passthrough is None else passthrough.url
