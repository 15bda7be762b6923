"""Buyer dialects as pure functions: a ping's `[token]` values, a buyer's request built from its
templates, and its answer parsed through its response mapping. No I/O here.

`parse_reply` never raises: whatever the buyer sent (any bytes, any JSON shape) becomes a
`ParsedReply`, an `error` one when the answer cannot be read.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import jmespath
import orjson
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from callbid.adapters.buyers.types import BuyerRequest, Parser
from callbid.adapters.phone import to_e164
from callbid.domain.buyers import ParsedReply, Passthrough, ReplyOutcome, ResponseMapping
from callbid.domain.model import PingRequest
from callbid.domain.tokens import render_parts

REGEX_PREFIX = "re:"
MAX_REASON = 200
MAX_SIP = 256
_FALSY_WORDS = frozenset({"", "false", "0", "no", "n", "off", "null", "none"})
_SIP_SCHEMES = ("sip:", "sips:")
_BARE_SIP = re.compile(r"[^@\s]+@[^@\s]+")
_FIELDS = ("accepted", "bid", "number", "seconds", "reason", "reference")
#: Dialects whose reservations can be released: callbid's `DELETE /rtbs/{uuid}.json`.
RELEASABLE = frozenset({"callbid", "retreaver"})
MAX_REFERENCE = 100
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLAIN_PATH = re.compile(rf"{_NAME}(?:\.{_NAME}|\[-?[0-9]+\])*")
_PLAIN_STEP = re.compile(rf"({_NAME})|\[(-?[0-9]+)\]")

Found = dict[str, object]


class Unreadable(Exception):
    """An answer (or a mapping) that cannot be read; its message is the reply's detail."""


def ping_tokens(request: PingRequest, *, uuid: str) -> dict[str, str]:
    """Every `[token]` value of a ping: its tags, then the caller's number in three forms,
    `publisher_id`, `uuid` (also `reservation_uuid`) and `inbound_number` when given.

    Names are lower case; built-in names win over tags of the same name. Without a caller
    number the caller tokens are empty strings.
    """
    tokens = dict(request.tags)
    tokens.update(caller_tokens(request.caller_number))
    tokens["publisher_id"] = request.publisher_id
    tokens["uuid"] = uuid
    tokens["reservation_uuid"] = uuid
    if request.inbound_number:
        tokens["inbound_number"] = request.inbound_number
    return tokens


def caller_tokens(e164: str | None) -> dict[str, str]:
    """`caller_number` (`+13035551234`), `caller_number_digits` (`13035551234`) and
    `caller_number_nanp` (`3035551234` for a +1 number, the digits otherwise)."""
    if not e164:
        return {"caller_number": "", "caller_number_digits": "", "caller_number_nanp": ""}
    digits = e164.lstrip("+")
    nanp = digits[1:] if e164.startswith("+1") and len(digits) == 11 else digits
    return {"caller_number": e164, "caller_number_digits": digits, "caller_number_nanp": nanp}


def build_request(passthrough: Passthrough, tokens: Mapping[str, str]) -> BuyerRequest:
    """The buyer's request with every `[token]` substituted (unknown tokens become empty),
    each value escaped for where it lands (`domain.tokens.render_parts`)."""
    parts = render_parts(
        passthrough.url, passthrough.headers, passthrough.body, passthrough.content_type, tokens
    )
    body = None if parts.body is None else parts.body.encode("utf-8", "replace")
    return BuyerRequest(passthrough.method, parts.url, parts.headers, body)


def release_request(passthrough: Passthrough, ping_url: str, reference: str) -> BuyerRequest | None:
    """The request that gives back what a chained engine reserved for a ping we did not route
    to it: `DELETE <base>/rtbs/<reference>.json?key=<key>`, from the ping's own URL. None for
    dialects without one, or a URL that is not an RTB endpoint with its key in the query."""
    if passthrough.dialect not in RELEASABLE:
        return None
    parts = urlsplit(ping_url)
    key = parse_qs(parts.query).get("key")
    if not parts.path.endswith("/rtbs.json") or not key:
        return None
    path = parts.path.removesuffix("rtbs.json") + f"rtbs/{quote(reference, safe='')}.json"
    url = urlunsplit((parts.scheme, parts.netloc, path, urlencode({"key": key[0]}), ""))
    return BuyerRequest("DELETE", url, (), None)


def parser_for(mapping: ResponseMapping) -> Parser:
    """`parse_reply` bound to `mapping`, as the executor calls it."""
    return functools.partial(parse_reply, mapping)


def parse_reply(
    mapping: ResponseMapping, status: int, body: bytes, content_type: str | None
) -> ParsedReply:
    """What a buyer's answer says under `mapping`. Never raises.

    204 is a decline; 3xx and other non-2xx statuses, a body the mapping cannot read (JSON
    that does not parse), and a bid, seconds or number of the wrong form are errors.
    `content_type` is not consulted: buyers label JSON as text/html often enough.
    """
    if status == 204:
        return ParsedReply(ReplyOutcome.DECLINED, detail="no content")
    if 300 <= status < 400:
        return ParsedReply(ReplyOutcome.ERROR, detail=f"redirect {status}")
    if not 200 <= status < 300:
        return ParsedReply(ReplyOutcome.ERROR, detail=f"http {status}")
    try:
        return interpret(mapping, extract(mapping, body))
    except Unreadable as problem:
        return ParsedReply(ReplyOutcome.ERROR, detail=str(problem))


def interpret(mapping: ResponseMapping, found: Found) -> ParsedReply:
    """The reply that the mapping's extracted values make."""
    reason = reason_of(found.get("reason"))
    if mapping.accepted is not None and not is_accepted(
        found.get("accepted"), mapping.accepted_values
    ):
        return ParsedReply(ReplyOutcome.DECLINED, detail=reason or "declined")
    bid = bid_of(found.get("bid"), mapping.bid_multiplier)
    number = number_of(found.get("number"))
    seconds = seconds_of(found.get("seconds"), mapping.seconds_offset)
    if mapping.accepted is None:
        if bid is not None and bid <= 0:
            return ParsedReply(ReplyOutcome.DECLINED, detail=reason or "no bid")
        if bid is None and number is None:
            return ParsedReply(ReplyOutcome.DECLINED, detail=reason or "declined")
    reference = reason_of(found.get("reference"))
    if reference is not None:
        reference = reference[:MAX_REFERENCE]
    return ParsedReply(
        ReplyOutcome.ACCEPTED, bid=bid, number=number, seconds=seconds, reference=reference
    )


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled mapping expression: a regex over the raw body or a JMESPath over its JSON.

    A plain path (`a.b[0].c`) also keeps its `steps`, walked without JMESPath's interpreter
    (same answers, a fraction of the cost: most mappings are plain paths).
    """

    regex: re.Pattern[str] | None = None
    path: ParsedResult | None = None
    steps: tuple[str | int, ...] | None = None


@functools.lru_cache(maxsize=4096)
def compile_expression(expression: str) -> Expression:
    """`re:<regex>` or a JMESPath (a leading `$.` or `$` dropped), compiled once.

    Raises `re.error` or `jmespath.exceptions.ParseError` when it does not compile.
    """
    if expression.startswith(REGEX_PREFIX):
        return Expression(regex=re.compile(expression[len(REGEX_PREFIX) :]))
    text = jmespath_text(expression)
    return Expression(path=jmespath.compile(text), steps=plain_steps(text))


def plain_steps(text: str) -> tuple[str | int, ...] | None:
    """`a.b[0].c` as `("a", "b", 0, "c")`; None for anything JMESPath must interpret."""
    if not _PLAIN_PATH.fullmatch(text):
        return None
    return tuple(int(i) if i else name for name, i in _PLAIN_STEP.findall(text))


def walk(document: object, steps: tuple[str | int, ...]) -> object:
    """A plain path's value as JMESPath gives it: null where a step does not apply."""
    node = document
    for step in steps:
        if isinstance(step, str):
            node = node.get(step) if isinstance(node, dict) else None
        elif isinstance(node, list) and -len(node) <= step < len(node):
            node = node[step]
        else:
            return None
    return node


def jmespath_text(expression: str) -> str:
    """`$.a.b` -> `a.b`, `$[0]` -> `[0]`, `$` -> `@`: JSONPath's root as JMESPath reads it."""
    text = expression.strip()
    if text.startswith("$."):
        return text[2:]
    if text.startswith("$"):
        return text[1:] or "@"
    return text


@functools.lru_cache(maxsize=4096)
def compile_mapping(mapping: ResponseMapping) -> tuple[tuple[str, Expression], ...]:
    """The mapping's expressions by field name, compiled (raises as `compile_expression`)."""
    named = ((name, getattr(mapping, name)) for name in _FIELDS)
    return tuple((name, compile_expression(text)) for name, text in named if text is not None)


def extract(mapping: ResponseMapping, body: bytes) -> Found:
    """Each mapped field's raw value (None when absent); the body decoded at most once."""
    try:
        compiled = compile_mapping(mapping)
    except (re.error, JMESPathError) as problem:
        raise Unreadable(f"bad mapping: {problem}") from None
    document = load_json(body) if any(e.path is not None for _, e in compiled) else None
    needs_text = any(e.regex is not None for _, e in compiled)
    text = body.decode("utf-8", "replace") if needs_text else ""
    return {name: evaluate(name, e, document, text) for name, e in compiled}


def load_json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Unreadable("malformed JSON") from None


def evaluate(name: str, expression: Expression, document: object, text: str) -> object:
    """One expression's value: the regex's first group (else its match), or the JMESPath's."""
    if expression.regex is not None:
        match = expression.regex.search(text)
        if match is None:
            return None
        return match.group(1) if expression.regex.groups else match.group(0)
    if expression.steps is not None:
        return walk(document, expression.steps)
    assert expression.path is not None
    try:
        return expression.path.search(document)
    except (JMESPathError, TypeError, ValueError, RecursionError):
        # A JMESPath function given the wrong types (`join` over a null) fails at search time.
        raise Unreadable(f"bad mapping for {name}") from None


def as_text(value: object) -> str:
    """A value as the lower-case text `accepted_values` are compared with."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode().lower()
    return str(value).lower()


def is_accepted(value: object, accepted_values: tuple[str, ...]) -> bool:
    """Whether the `accepted` value says yes: one of `accepted_values` when given, else truthy
    (null, false, 0, empty, and words like "false" or "no" are not)."""
    if value is None:
        return False
    if accepted_values:
        return as_text(value) in {v.strip().lower() for v in accepted_values}
    if isinstance(value, str):
        return value.strip().lower() not in _FALSY_WORDS
    return bool(value)


def bid_of(value: object, multiplier: float) -> float | None:
    """The bid times `multiplier`, rounded to 4 decimals; None when absent or blank.

    Raises `Unreadable` for anything but a finite, non-negative number or numeric text
    (`"12.50"`, `"$12.50"`).
    """
    amount = number_value(value, "malformed bid")
    if amount is None:
        return None
    scaled = amount * multiplier
    if amount < 0 or not math.isfinite(scaled):
        raise Unreadable("malformed bid")
    return round(scaled, 4)


def seconds_of(value: object, offset: int) -> int | None:
    """Whole seconds (floats rounded down) plus `offset`, never below 0; None when absent."""
    amount = number_value(value, "malformed seconds")
    if amount is None:
        return None
    if isinstance(amount, float):
        amount = math.floor(amount)
    return max(0, int(amount) + offset)


def number_value(value: object, problem: str) -> int | float | None:
    """A JSON number or numeric text as a finite number; None when absent or blank."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Unreadable(problem)
    number = numeric_text(value, problem) if isinstance(value, str) else value
    if number is not None:
        finite(number, problem)
    return number


def numeric_text(text: str, problem: str) -> int | float | None:
    """`" $12.50 "` -> 12.5, `"90"` -> 90, blank -> None."""
    cleaned = text.strip().removeprefix("$").strip()
    if not cleaned:
        return None
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        return float(cleaned)
    except ValueError:
        raise Unreadable(problem) from None


def finite(number: int | float, problem: str) -> None:
    """Raises `Unreadable` unless `number` is finite as a float (NaN, inf, 10**400 are not)."""
    try:
        if math.isfinite(float(number)):
            return
    except OverflowError:
        pass
    raise Unreadable(problem)


def number_of(value: object) -> str | None:
    """The number to send the call to: E.164 (read as US) or a SIP URI; None when absent.

    `sip:`/`sips:` URIs are kept as they are; a bare `user@host` becomes `sip:user@host`.
    Raises `Unreadable` for anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Unreadable("malformed number")
    text = str(value).strip()
    if not text:
        return None
    if text.lower().startswith(_SIP_SCHEMES) or _BARE_SIP.fullmatch(text):
        return sip_uri(text)
    e164 = to_e164(text)
    if e164 is None:
        raise Unreadable("malformed number")
    return e164


def sip_uri(text: str) -> str:
    uri = text if text.lower().startswith(_SIP_SCHEMES) else "sip:" + text
    if len(uri) > MAX_SIP or not uri.isprintable() or any(c.isspace() for c in uri):
        raise Unreadable("malformed number")
    return uri


def reason_of(value: object) -> str | None:
    """The buyer's reason as text of at most 200 characters; None when absent or blank."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, dict | list):
        text = orjson.dumps(value).decode()
    else:
        text = as_text(value) if isinstance(value, bool) else str(value)
    return text[:MAX_REASON] or None
