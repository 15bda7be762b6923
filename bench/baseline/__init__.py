"""The Redis reserve as it was before the flat-argument rewrite, frozen for `hotstate.py`.

`common.lua`, `reserve.lua` and `claim.lua` are the scripts of main at 2026-12-07 (commit
d04824f); `encode_order` is the order encoding they read (one JSON document). Both scripts
store the same record, so the claim of either reads the other's reservations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from callbid.domain.reserve import Candidate, CapSubject, ReserveOrder

HERE = Path(__file__).parent


def script_source(name: str) -> str:
    return (HERE / "common.lua").read_text() + "\n" + (HERE / f"{name}.lua").read_text()


def encode_order(order: ReserveOrder) -> bytes:
    data: dict[str, Any] = {
        "u": order.uuid,
        "n": order.now,
        "e": order.expires_at,
        "h": order.hold,
        "pl": order.pool,
        "st": order.seen_ttl,
        "op": [[o.criterion_id, o.window, o.seconds, o.revenue] for o in order.options],
        "cd": [_candidate(c) for c in order.candidates],
    }
    optional: dict[str, Any] = {
        "c": order.caller_number,
        "i": order.inbound_number,
        "sh": order.shield_key,
        "sn": order.seen_key,
        "pb": _subject(order.publisher) if order.publisher is not None else None,
        "rt": (
            [order.rate.key, order.rate.per_second, order.rate.burst]
            if order.rate is not None
            else None
        ),
        "pr": order.probe or None,
    }
    data.update((k, v) for k, v in optional.items() if v is not None)
    return orjson.dumps(data)


def _candidate(candidate: Candidate) -> list[Any]:
    encoded = [
        candidate.target_id,
        [_subject(s) for s in candidate.subjects],
        candidate.dedupe_seconds,
        candidate.payouts,
    ]
    overrides = {
        k: v
        for k, v in (
            ("r", candidate.revenue),
            ("s", candidate.seconds),
            ("i", candidate.inbound_number),
        )
        if v is not None
    }
    if overrides:
        encoded.append(overrides)
    return encoded


def _subject(subject: CapSubject) -> list[Any]:
    periods = [[p.name, p.counter, p.limit] for p in subject.periods]
    return [subject.key, subject.label, subject.concurrency, periods]
