"""From raw ping parameters to a validated `PingRequest`, with tags derived from caller facts."""

from __future__ import annotations

from collections.abc import Mapping

from callbid.adapters.geo import lookup_zip
from callbid.adapters.phone import area_code, to_e164
from callbid.domain.errors import InvalidInput, Unauthorized
from callbid.domain.model import PingRequest

#: Parameters with a meaning of their own; every other parameter is a tag.
RESERVED = frozenset(
    {"key", "caller_number", "inbound_number", "status", "source_id", "affiliate_id"}
)
PUBLISHER_ALIASES = ("publisher_id", "source_id", "affiliate_id")
MAX_KEY = 64
MAX_PUBLISHER_ID = 100


def key_of(params: Mapping[str, str]) -> str:
    """The RTB key parameter; Unauthorized when it is missing or cannot be a key."""
    key = params.get("key", "").strip()
    if not key:
        raise Unauthorized("FAILED must include key (string)")
    if len(key) > MAX_KEY:
        raise Unauthorized("FAILED invalid key")
    return key


def publisher_of(params: Mapping[str, str]) -> str:
    for name in PUBLISHER_ALIASES:
        value = params.get(name, "").strip()
        if value:
            if len(value) > MAX_PUBLISHER_ID or not value.isprintable():
                raise InvalidInput(
                    f"FAILED {name} must be at most {MAX_PUBLISHER_ID} printable characters"
                )
            return value
    raise InvalidInput("FAILED must include publisher_id (string)")


def build_request(
    params: Mapping[str, str], *, key: str, publisher_id: str, allow_no_caller: bool
) -> PingRequest:
    """Validate caller and inbound numbers and collect the tags.

    Raises InvalidInput with the public message for a missing or malformed number.
    """
    raw_caller = params.get("caller_number", "").strip()
    caller = None
    if raw_caller:
        caller = to_e164(raw_caller)
        if caller is None:
            raise InvalidInput("FAILED caller_number is not a valid phone number")
    elif not allow_no_caller:
        raise InvalidInput("FAILED must include caller_number (string)")
    inbound = None
    raw_inbound = params.get("inbound_number", "").strip()
    if raw_inbound:
        inbound = to_e164(raw_inbound)
        if inbound is None:
            raise InvalidInput("FAILED inbound_number is not a valid phone number")
    return PingRequest(
        key, publisher_id, caller, inbound, derive_tags(params, publisher_id, caller)
    )


def derive_tags(params: Mapping[str, str], publisher_id: str, caller: str | None) -> dict[str, str]:
    """Every non-reserved parameter, plus `publisher_id`, the caller's area code and, from
    `caller_zip`, `caller_state` and `caller_city` unless the ping gave them."""
    tags = {name: value.strip() for name, value in params.items() if name not in RESERVED}
    tags["publisher_id"] = publisher_id
    if caller is not None:
        tags["caller_number"] = caller
        code = area_code(caller)
        if code is not None:
            tags.setdefault("caller_area_code", code)
    zip_code = tags.get("caller_zip")
    if zip_code:
        info = lookup_zip(zip_code)
        if info is not None:
            if not tags.get("caller_state"):
                tags["caller_state"] = info.state
            tags.setdefault("caller_city", info.city)
    return tags
