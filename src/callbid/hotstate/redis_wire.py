"""How the Redis hot state lays out its keys and what crosses the wire to its Lua scripts."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import orjson

from callbid.domain.reserve import (
    CallHold,
    CapSubject,
    HoldStatus,
    LiveReservation,
    ReserveOrder,
    ReserveResult,
    ReserveStatus,
    capped_reason,
)

Reply = list[Any]


def prefix(namespace: str) -> str:
    """The prefix of every key of `namespace`; its hash tag keeps them in one Cluster slot."""
    return f"cb:{{{namespace}}}:"


def script_keys(namespace: str) -> list[str]:
    """The keys every script of `namespace` declares: its prefix and `<prefix>~`, neither of
    which is ever written (the scripts build their real keys from KEYS[1]).

    Two keys, not one, make the scripts safe while Redis Cluster moves the namespace's slot.
    By Redis's rule for multi-key commands (`getNodeByQuery`), the slot's old owner answers
    a command whose keys it does not all have with ASK, and the new owner, asked with several
    keys of which some are missing, answers TRYAGAIN. Neither key ever exists, so during a
    migration every script on that slot is refused with TRYAGAIN (then 503 with Retry-After)
    instead of running over the half of the slot's keys one node holds. A single declared
    key would be served by the new owner after ASK, over whatever keys had moved so far.
    Scripts of slots that are not moving are unaffected, and a single Redis ignores both."""
    head = prefix(namespace)
    return [head, f"{head}~"]


def record_key(namespace: str, uuid: str) -> str:
    return f"{prefix(namespace)}r:{uuid}"


def who_key(p: str, caller: str) -> str:
    """The caller's hash: its shields, sightings and match entries (see common.lua)."""
    return f"{p}who:{caller}"


def encode_subjects(subjects: tuple[CapSubject, ...]) -> bytes:
    """Subjects as hold.lua and dial.lua read them: [key, label, concurrency, periods]."""
    return orjson.dumps(
        [
            [s.key, s.label, s.concurrency, [[p.name, p.counter, p.limit] for p in s.periods]]
            for s in subjects
        ]
    )


#: As common.lua: a key is collected GRACE seconds after what it holds is dead.
GRACE = 86_400


def reserve_args(order: ReserveOrder, epsilon: float, dry: bool = False) -> list[str | bytes]:
    """The order as reserve.lua reads it, in flat strings: every key in full, every time in the
    form Redis takes it, every record a candidate may become already encoded (per payout
    option), so that the script decodes and formats nothing. In order ('' for absent):

    1-17: uuid, now, hold, probe, dry ('1' or ''), the record key, the caller's hash key
    (`who:<caller>`, '' without a caller), the shield and sighting fields in it, the sighting's
    value, the TTL the caller's hash needs, the TTL of the record, its expiry, `(now` (a
    ZCOUNT bound), the inbound number and its JSON, epsilon;
    then the rate key, interval and tolerance; the pool count and per number (number, JSON,
    key); the option count and each option's window; '1' and the publisher's subject, or '';
    the candidate count and per candidate: target, dedupe seconds, its own inbound number and
    its JSON, its subject count, its subjects, and one record body per option ('' unpriced).
    A subject: live key, pending key, concurrency, its reason, the period count and per
    period (counter key, limit, reason)."""
    p, now, expires = prefix(order.namespace), order.now, order.expires_at
    caller, inbound = order.caller_number, order.inbound_number
    life = _life(expires - now)
    seen = order.seen_key is not None
    args: list[str | bytes] = [
        order.uuid,
        repr(now),
        "1" if order.hold else "",
        "1" if order.probe else "",
        "1" if dry else "",
        f"{p}r:{order.uuid}",
        who_key(p, caller) if caller is not None else "",
        order.shield_key or "",
        order.seen_key or "",
        f"{now!r}|{now + order.seen_ttl!r}",
        str(max(life, _life(order.seen_ttl)) if seen else life),
        str(life),
        repr(expires),
        f"({now!r}",
        inbound or "",
        _json(inbound) if inbound is not None else "",
        repr(epsilon),
    ]
    if order.rate is not None:
        interval = 1.0 / order.rate.per_second
        tolerance = interval * max(order.rate.burst - 1, 0)
        args += (f"{p}rate:{order.rate.key}", repr(interval), repr(tolerance))
    else:
        args += ("", "", "")
    args.append(str(len(order.pool)))
    for number in order.pool:
        args += (number, _json(number), f"{p}pool:{number}")
    args.append(str(len(order.options)))
    args += (str(o.window) for o in order.options)
    publisher = order.publisher
    if publisher is not None:
        args.append("1")
        args += _subject_args(p, publisher)
    else:
        args.append("")
    # Each record body: what every candidate's record shares, then its own part.
    shared = _json({"u": order.uuid, "e": repr(expires), "h": order.hold})[:-1]
    if caller is not None:
        shared += ',"c":' + _json(caller)
    if order.shield_key is not None:
        shared += ',"sh":' + _json(order.shield_key)
    extra = (publisher.key,) if publisher is not None else ()
    args.append(str(len(order.candidates)))
    for candidate in order.candidates:
        own = candidate.inbound_number
        args += (
            str(candidate.target_id),
            str(candidate.dedupe_seconds),
            own or "",
            _json(own) if own is not None else "",
            str(len(candidate.subjects)),
        )
        for subject in candidate.subjects:
            args += _subject_args(p, subject)
        keys = [s.key for s in candidate.subjects] + list(extra)
        payouts = candidate.payouts
        for index, option in enumerate(order.options):
            payout = payouts[index] if index < len(payouts) else None  # short: unpriced
            if payout is None:
                args.append("")
                continue
            revenue = candidate.revenue if candidate.revenue is not None else option.revenue
            seconds = candidate.seconds if candidate.seconds is not None else option.seconds
            part: dict[str, Any] = {
                "t": candidate.target_id,
                "p": repr(payout),
                "s": seconds,
                "r": repr(revenue),
                "k": keys,
            }
            if option.criterion_id is not None:
                part["cr"] = option.criterion_id
            args.append(f"{shared},{_json(part)[1:-1]}")
    return args


def _life(seconds: float) -> int:
    return max(math.ceil(seconds), 0) + GRACE


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@lru_cache(maxsize=4096)
def _subject_args(p: str, subject: CapSubject) -> tuple[str, ...]:
    """A cap subject as reserve.lua reads it; the same few subjects recur on every ping."""
    args: list[str] = [
        f"{p}live:{subject.key}",
        f"{p}pending:{subject.key}",
        str(subject.concurrency) if subject.concurrency is not None else "",
        capped_reason(subject, "concurrency"),
        str(len(subject.periods)),
    ]
    for cap in subject.periods:
        args += (f"{p}cnt:{cap.counter}", str(cap.limit), capped_reason(subject, cap.name))
    return tuple(args)


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
