"""How the Redis hot state lays out its keys and what crosses the wire to its Lua scripts."""

from __future__ import annotations

from typing import Any

import orjson

from callbid.domain.reserve import (
    CallHold,
    Candidate,
    CapSubject,
    HoldStatus,
    LiveReservation,
    ReserveOrder,
    ReserveResult,
    ReserveStatus,
)

Reply = list[Any]


def prefix(namespace: str) -> str:
    """The prefix of every key of `namespace`; its hash tag keeps them in one Cluster slot."""
    return f"cb:{{{namespace}}}:"


def record_key(namespace: str, uuid: str) -> str:
    return f"{prefix(namespace)}r:{uuid}"


def encode_subjects(subjects: tuple[CapSubject, ...]) -> bytes:
    return orjson.dumps([_subject(s) for s in subjects])


def encode_order(order: ReserveOrder) -> bytes:
    """The order as one compact JSON document; absent optional parts are left out."""
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


def encode_records(records: list[LiveReservation]) -> bytes:
    """Records in the form `reserve.lua` stores them (for `load.lua`)."""
    return orjson.dumps([_record(r) for r in records])


def _record(record: LiveReservation) -> dict[str, Any]:
    data: dict[str, Any] = {
        "u": record.uuid,
        "t": record.target_id,
        "i": record.inbound_number,
        "p": repr(record.payout),
        "s": record.seconds,
        "r": repr(record.revenue),
        "e": repr(record.expires_at),
        "h": record.holds,
        "k": list(record.subject_keys),
    }
    optional = {
        "c": record.caller_number,
        "cr": record.criterion_id,
        "sh": record.shield_key,
        "pn": record.pool_number,
    }
    data.update((k, v) for k, v in optional.items() if v is not None)
    return data


def decode_record(raw: bytes | str) -> LiveReservation:
    """A record as `reserve.lua` stores it: floats as %.17g strings, None fields absent."""
    data = orjson.loads(raw)
    keys = data["k"]
    criterion = data.get("cr")
    return LiveReservation(
        uuid=data["u"],
        target_id=int(data["t"]),
        inbound_number=data["i"],
        caller_number=data.get("c"),
        payout=float(data["p"]),
        seconds=int(data["s"]),
        revenue=float(data["r"]),
        criterion_id=None if criterion is None else int(criterion),
        expires_at=float(data["e"]),
        holds=bool(data["h"]),
        # Lua's cjson writes an empty list as `{}`.
        subject_keys=tuple(keys) if isinstance(keys, list) else (),
        shield_key=data.get("sh"),
        pool_number=data.get("pn"),
    )


def decode_live(raw: bytes | str | None, now: float) -> LiveReservation | None:
    if raw is None:
        return None
    record = decode_record(raw)
    return record if record.expires_at > now else None


def decode_result(reply: Reply) -> ReserveResult:
    status, raw, blocked, seen, wait = reply
    return ReserveResult(
        ReserveStatus(_text(status)),
        record=decode_record(raw) if raw else None,
        blocked=tuple((int(t), str(r)) for t, r in orjson.loads(blocked)) if blocked else (),
        last_seen=float(seen) if seen else None,
        retry_after=float(wait) if wait else 0.0,
    )


def decode_hold(reply: Reply) -> tuple[HoldStatus, str | None]:
    status = HoldStatus(_text(reply[0]))
    return status, _text(reply[1]) if len(reply) > 1 else None


def encode_holds(holds: list[CallHold]) -> bytes:
    """Holds in the form the call scripts store them (`common.lua`, `hold_call`)."""
    return orjson.dumps(
        [
            {
                "c": h.call_key,
                "t": h.target_id,
                "k": list(h.subject_keys),
                "n": list(h.counters),
                "e": repr(h.until),
                "d": h.counted,
            }
            for h in holds
        ]
    )


def decode_hold_record(raw: bytes | str) -> CallHold:
    data = orjson.loads(raw)
    keys, counters = data["k"], data["n"]
    return CallHold(
        call_key=data["c"],
        target_id=int(data["t"]),
        # Lua's cjson writes an empty list as `{}`.
        subject_keys=tuple(keys) if isinstance(keys, list) else (),
        counters=tuple(counters) if isinstance(counters, list) else (),
        until=float(data["e"]),
        counted=bool(data["d"]),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
