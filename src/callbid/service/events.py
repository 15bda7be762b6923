"""The request log: one event per publisher request (ping, confirm, release, read) and per
call event, with what an operator needs to follow it and nothing a log must not hold: the RTB
key appears only as `key_id` (a fingerprint), a caller only as its last four digits, and no
token ever.

Each event is a record of the `callbid.events` logger whose `fields` the formatter writes
(`callbid.logs`); nothing is built when that logger does not write INFO.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from callbid.logs import FIELDS, mask_number
from callbid.service.configs import KeyConfig
from callbid.service.ping import PingAnswer

EVENTS = logging.getLogger("callbid.events")


@lru_cache(maxsize=4096)
def key_id(key: str) -> str:
    """A key's fingerprint for logs: the first 12 hex digits of its SHA-256 (the key itself
    is a credential). `printf %s "$KEY" | sha256sum | cut -c1-12` gives the same."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def log_publisher_request(
    event: str,
    params: Mapping[str, str],
    config: KeyConfig | None,
    answer: PingAnswer | None,
    *,
    http_status: int,
    latency_ms: float,
    error: str | None = None,
    uuid: str | None = None,
) -> None:
    """One publisher request: `answer` when it was answered, else the `error` it got."""
    if not EVENTS.isEnabledFor(logging.INFO):
        return
    key = params.get("key", "").strip()
    fields: dict[str, Any] = {
        "uuid": answer.uuid if answer is not None else uuid,
        "company": config.key.company_id if config is not None else None,
        "campaign": config.key.campaign_id if config is not None else None,
        "key_id": key_id(key) if key else None,
        "publisher": params.get("publisher_id") or params.get("publisher") or None,
        "http_status": http_status,
        "latency_ms": round(latency_ms, 2),
    }
    if answer is not None:
        fields.update(
            status=answer.status,
            reason_code=answer.reason_code,
            shielded=answer.shielded or None,
            target=answer.target_id,
            payout=answer.payout,
            caller=mask_number(answer.caller_number or params.get("caller_number")),
        )
    else:
        fields.update(status="failed", error=error, caller=mask_number(params.get("caller_number")))
    EVENTS.info(event, extra={FIELDS: _present(fields)})


def log_call_event(event: str, row: Mapping[str, Any], **extra: Any) -> None:
    """One step of a call (`call.started`, `call.leg_failed`, `call.connected`,
    `call.ended`) from its row as stored."""
    if not EVENTS.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "call": row["uuid"],
        "call_sid": row["call_sid"],
        "company": row["company_id"],
        "campaign": row["campaign_id"],
        "publisher": row["publisher_id"],
        "reservation": row["reservation_uuid"],
        "match": str(row["match"]),
        "status": row["status"],
        "target": row["target_id"],
        "caller": mask_number(row["caller_number"]),
        "dialled": row["dialled_number"],
    }
    if row["status"] == "ended":
        fields.update(
            connected_seconds=row["connected_seconds"],
            converted=row["converted"],
            payout=row["payout"],
        )
    fields.update(extra)
    EVENTS.info(event, extra={FIELDS: _present(fields)})


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
