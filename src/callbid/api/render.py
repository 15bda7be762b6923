"""The JSON shapes publishers parse: Retreaver RTB and the legacy Call Reservation API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from callbid.adapters.phone import national_format
from callbid.service.ping import PingAnswer

WITH_NUMBER = frozenset({"reserved", "confirmed", "claimed", "expired", "wiped"})
WITH_REASON = frozenset({"no-target", "rejected"})


def iso_ms(at: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and a Z, as Retreaver writes `expires_at`."""
    if at is None:
        return None
    # isoformat truncates to milliseconds as `microsecond // 1000` would, and costs less than
    # strftime; the zone is dropped as strftime's pattern dropped it.
    return at.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def rtb_body(answer: PingAnswer) -> dict[str, Any]:
    """`{"uuid", "status", ...}`: the reservation fields when a number was given, `info` for a
    rejection, `reason_code` for a rejection or no-target, `retreaver_ping_shield` on a repeat
    ping."""
    body: dict[str, Any] = {"uuid": answer.uuid, "status": answer.status}
    if answer.status in WITH_NUMBER and answer.inbound_number is not None:
        body["retreaver_payout"] = answer.payout
        body["retreaver_seconds"] = answer.seconds
        body["inbound_number"] = answer.inbound_number
        body["expires_at"] = iso_ms(answer.expires_at)
    if answer.info and answer.status == "rejected":
        body["info"] = answer.info
    if answer.reason_code is not None and answer.status in WITH_REASON:
        body["reason_code"] = answer.reason_code
    if answer.shielded:
        body["retreaver_ping_shield"] = True
    return body


def legacy_body(answer: PingAnswer) -> dict[str, Any]:
    """The nested `call_reservation` object of the Call Reservation guide, same keys (plus
    `reason_code`, as in the RTB shape)."""
    caller = answer.caller_number
    reserved = answer.status in WITH_NUMBER and answer.inbound_number is not None
    call = {
        "uuid": answer.uuid,
        "formatted_caller_number": national_format(caller) if caller else None,
        "status": answer.status,
        "start_time": None,
        "end_time": None,
        "caller_number": caller,
        "target_id": answer.target_id if reserved else None,
        "winning_leg_connected_at": None,
        "winning_leg_disconnected_at": None,
    }
    reservation: dict[str, Any] = {
        "uuid": answer.uuid,
        "inbound_number": _legacy_number(answer.inbound_number) if reserved else None,
        "caller_number": caller,
        "status": answer.status,
        "expires_at": iso_ms(answer.expires_at) if reserved else None,
        "claimed_at": iso_ms(answer.claimed_at),
        "wiped_at": iso_ms(answer.wiped_at),
        "call": call,
        "matched_targets": [{"id": answer.target_id}] if reserved and answer.target_id else [],
        "tag_values": [{"key": k, "value": v} for k, v in sorted((answer.tags or {}).items())],
        "conversion_groups": _conversion_groups(answer) if reserved else [],
    }
    if answer.info and answer.status == "rejected":
        reservation["info"] = answer.info
    if answer.reason_code is not None and answer.status in WITH_REASON:
        reservation["reason_code"] = answer.reason_code
    return {"call_reservation": reservation}


def _legacy_number(number: str | None) -> int | str | None:
    """The guide shows `inbound_number` as digits without `+` (`11234567890`)."""
    if number is not None and number.startswith("+") and number[1:].isdigit():
        return int(number[1:])
    return number


def _conversion_groups(answer: PingAnswer) -> list[dict[str, Any]]:
    return [{"id": answer.criterion_id, "payout": answer.payout, "seconds": answer.seconds}]
