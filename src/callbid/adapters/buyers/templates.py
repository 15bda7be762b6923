"""Ready dialect templates (Ringba, CallGrid, Retreaver/callbid) and the validation that turns a
stored or admin passthrough config into the domain `Passthrough`.

The config is a JSON object: `template`, `url` (required), `method`, `headers`, `body`,
`content_type`, `number_mode` and `mapping`. Fields given replace the template's; `mapping`
fields merge one by one over the template's mapping. Every problem raises `ValueError` naming
the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import orjson
from jmespath.exceptions import JMESPathError

from callbid.adapters.buyers.dialect import compile_expression
from callbid.domain.buyers import NumberMode, Passthrough, ResponseMapping
from callbid.domain.tokens import TOKEN

METHODS = ("GET", "POST", "PUT", "PATCH")
NUMBER_MODES = tuple(mode.value for mode in NumberMode)
MAX_BODY = 16 * 1024
MAX_URL = 2048
MAX_HEADERS = 50
MAX_HEADER_VALUE = 4096
MAX_EXPRESSION = 500
MAX_ACCEPTED_VALUES = 50
MAX_SECONDS_OFFSET = 86_400
CONFIG_KEYS = frozenset(
    {"template", "url", "method", "headers", "body", "content_type", "number_mode", "mapping"}
)
EXPRESSION_KEYS = ("accepted", "bid", "number", "seconds", "reason", "reference")
MAPPING_KEYS = frozenset({*EXPRESSION_KEYS, "accepted_values", "bid_multiplier", "seconds_offset"})
#: RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTENT_TYPE = re.compile(r"[\w.+\-]+/[\w.+\-]+(\s*;.*)?", re.ASCII)
#: A header value may hold any printable text and tabs, never CR, LF or other controls.
_BAD_HEADER_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class Template:
    """A dialect's defaults: everything of a `Passthrough` but the URL the user supplies."""

    name: str
    description: str
    mapping: ResponseMapping = field(default_factory=ResponseMapping)
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    content_type: str = "application/json"
    number_mode: NumberMode = NumberMode.TRANSFER


_JSON_ACCEPT = (("Accept", "application/json"),)

RINGBA = Template(
    name="ringba",
    description=(
        "Ringba RTB bid request: POST to https://rtb.ringba.com/v1/production/<RTB_ID>.json; "
        "a bid is accepted when bidAmount > 0 and a phoneNumber is given."
    ),
    headers=_JSON_ACCEPT,
    body=(
        '{"CID": "[caller_number_digits]", "zipcode": "[caller_zip]", '
        '"exposeCallerId": "yes", "publisherInboundCallId": "[uuid]"}'
    ),
    mapping=ResponseMapping(
        accepted="bidAmount > `0` && phoneNumber",
        bid="bidAmount",
        number="phoneNumber",
        seconds="bidTerms[0].callMinDuration",
        reason="rejectReason",
    ),
)

CALLGRID = Template(
    name="callgrid",
    description=(
        "CallGrid Bid API: POST to https://bid.callgrid.com/api/bid/<Grid-ID>; code 1000 is a "
        "bid (dynamicBid, in USD), 2000 a decline, 3000 no capacity, 4000 and up rejections."
    ),
    headers=_JSON_ACCEPT,
    body=(
        '{"CallerId": "[caller_number_nanp]", "InboundStateCode": "[caller_state]", '
        '"InboundZipCode": "[caller_zip]", "PublisherId": "[publisher_id]", "pstn": true}'
    ),
    mapping=ResponseMapping(
        accepted="code",
        accepted_values=("1000",),
        bid="dynamicBid",
        # `dynamicSipAddress` is documented by integrators; the PSTN number's name (asked for
        # with `pstn: true`) is not public, hence the likely names first.
        number="dynamicNumber || phoneNumber || number || dynamicSipAddress",
        reason="message",
    ),
)

RETREAVER = Template(
    name="retreaver",
    description=(
        "Retreaver RTB (and callbid itself): POST to <host>/rtbs.json?key=<key>&publisher_id=<id>;"
        " a reserved or confirmed answer's inbound_number is dialled by callbid (chaining)."
    ),
    body=(
        '{"caller_number": "[caller_number]", "caller_zip": "[caller_zip]", '
        '"caller_state": "[caller_state]"}'
    ),
    mapping=ResponseMapping(
        accepted="status",
        accepted_values=("reserved", "confirmed"),
        bid="retreaver_payout",
        number="inbound_number",
        seconds="retreaver_seconds",
        reason="info || status",
        reference="uuid",
    ),
    number_mode=NumberMode.DIAL,
)

CUSTOM = Template(name="custom", description="No defaults: every field comes from the config.")

TEMPLATES: Mapping[str, Template] = MappingProxyType(
    {
        "custom": CUSTOM,
        "ringba": RINGBA,
        "callgrid": CALLGRID,
        "retreaver": RETREAVER,
        "callbid": replace(RETREAVER, name="callbid"),
    }
)
TEMPLATE_NAMES: tuple[str, ...] = tuple(TEMPLATES)


def passthrough_from(config: Mapping[str, Any]) -> Passthrough:
    """The `Passthrough` a config describes, over its template's defaults.

    Raises `ValueError` naming the field at fault: unknown template or keys, a URL that is not
    http(s) with a host, a bad method, header names or values with CR/LF, a body over 16 KiB
    (or JSON that does not parse), an expression that does not compile, a bad multiplier.
    """
    if not isinstance(config, Mapping):
        raise ValueError("passthrough: must be an object")
    reject_unknown(config, CONFIG_KEYS, "passthrough")
    template = template_of(config.get("template", "custom"))
    content_type = content_type_of(config.get("content_type", template.content_type))
    passthrough = Passthrough(
        url=url_of(config.get("url")),
        mapping=mapping_of(config.get("mapping", {}), template.mapping),
        method=method_of(config.get("method", template.method)),
        headers=headers_of(config["headers"]) if "headers" in config else template.headers,
        body=body_of(config.get("body", template.body), content_type),
        content_type=content_type,
        number_mode=number_mode_of(config.get("number_mode", template.number_mode)),
        dialect=template.name,
    )
    require_some_mapping(passthrough.mapping)
    return passthrough


def passthrough_to_dict(passthrough: Passthrough) -> dict[str, Any]:
    """The effective config of `passthrough`, as the admin API shows it; `passthrough_from`
    reads it back to an equal `Passthrough`."""
    m = passthrough.mapping
    return {
        "template": passthrough.dialect,
        "url": passthrough.url,
        "method": passthrough.method,
        "headers": dict(passthrough.headers),
        "body": passthrough.body,
        "content_type": passthrough.content_type,
        "number_mode": str(passthrough.number_mode),
        "mapping": {
            **{key: getattr(m, key) for key in EXPRESSION_KEYS},
            "accepted_values": list(m.accepted_values),
            "bid_multiplier": m.bid_multiplier,
            "seconds_offset": m.seconds_offset,
        },
    }


def reject_unknown(given: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in given if key not in known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)}")


def template_of(name: object) -> Template:
    if not isinstance(name, str) or name not in TEMPLATES:
        raise ValueError(f"template: unknown template {name!r} (one of {', '.join(TEMPLATES)})")
    return TEMPLATES[name]


def url_of(url: object) -> str:
    """An http(s) URL with a host; `[tokens]` may stand anywhere in it."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url: required")
    if len(url) > MAX_URL:
        raise ValueError(f"url: longer than {MAX_URL} characters")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError("url: must not contain spaces or control characters")
    try:
        parts = urlsplit(TOKEN.sub("x", url))
        host = parts.hostname
    except ValueError as problem:
        raise ValueError(f"url: {problem}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("url: scheme must be http or https")
    if not host:
        raise ValueError("url: needs a host")
    return url


def method_of(method: object) -> str:
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}")
    return method.upper()


def headers_of(headers: object) -> tuple[tuple[str, str], ...]:
    """`{name: value}` as pairs; names RFC 9110 tokens, values without CR, LF or controls."""
    if not isinstance(headers, Mapping):
        raise ValueError("headers: must be an object of name: value")
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"headers: at most {MAX_HEADERS}")
    return tuple(header_of(name, value) for name, value in headers.items())


def header_of(name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"headers: invalid header name {name!r}")
    if not isinstance(value, str):
        raise ValueError(f"headers.{name}: value must be a string")
    if _BAD_HEADER_VALUE.search(value):
        raise ValueError(f"headers.{name}: value must not contain CR, LF or control characters")
    if len(value) > MAX_HEADER_VALUE:
        raise ValueError(f"headers.{name}: longer than {MAX_HEADER_VALUE} characters")
    return name, value


def content_type_of(content_type: object) -> str:
    if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type.strip()):
        raise ValueError("content_type: must be a media type such as application/json")
    if _BAD_HEADER_VALUE.search(content_type) or len(content_type) > 200:
        raise ValueError("content_type: must be a media type such as application/json")
    return content_type.strip()


def body_of(body: object, content_type: str) -> str | None:
    """The body template: at most 16 KiB; JSON when `content_type` is JSON (tokens read as 0,
    so `{"age": [age]}` passes as well as `{"cid": "[caller_number]"}`)."""
    if body is None:
        return None
    if not isinstance(body, str):
        raise ValueError("body: must be a string or null")
    if len(body.encode("utf-8", "replace")) > MAX_BODY:
        raise ValueError(f"body: larger than {MAX_BODY // 1024} KiB")
    if content_type.split(";", 1)[0].strip().lower().endswith("json"):
        try:
            orjson.loads(TOKEN.sub("0", body))
        except orjson.JSONDecodeError as problem:
            raise ValueError(f"body: not valid JSON ({problem})") from None
    return body


def number_mode_of(mode: object) -> NumberMode:
    if isinstance(mode, str) and mode in NUMBER_MODES:
        return NumberMode(mode)
    raise ValueError(f"number_mode: must be one of {', '.join(NUMBER_MODES)}")


def mapping_of(given: object, base: ResponseMapping) -> ResponseMapping:
    """`base` with the given mapping fields replaced, each validated."""
    if not isinstance(given, Mapping):
        raise ValueError("mapping: must be an object")
    reject_unknown(given, MAPPING_KEYS, "mapping")
    changes: dict[str, Any] = {}
    for key in EXPRESSION_KEYS:
        if key in given:
            changes[key] = expression_of(key, given[key])
    if "accepted_values" in given:
        changes["accepted_values"] = accepted_values_of(given["accepted_values"])
    if "bid_multiplier" in given:
        changes["bid_multiplier"] = multiplier_of(given["bid_multiplier"])
    if "seconds_offset" in given:
        changes["seconds_offset"] = offset_of(given["seconds_offset"])
    mapping = replace(base, **changes)
    if mapping.accepted_values and mapping.accepted is None:
        raise ValueError("mapping.accepted_values: needs mapping.accepted")
    return mapping


def expression_of(key: str, expression: object) -> str | None:
    """A JMESPath or `re:<regex>` that compiles; None or blank clears the field."""
    if expression is None:
        return None
    if not isinstance(expression, str):
        raise ValueError(f"mapping.{key}: must be a string or null")
    text = expression.strip()
    if not text:
        return None
    if len(text) > MAX_EXPRESSION:
        raise ValueError(f"mapping.{key}: longer than {MAX_EXPRESSION} characters")
    try:
        compile_expression(text)
    except re.error as problem:
        raise ValueError(f"mapping.{key}: invalid regex ({problem})") from None
    except JMESPathError as problem:
        raise ValueError(f"mapping.{key}: invalid JMESPath ({problem})") from None
    return text


def accepted_values_of(values: object) -> tuple[str, ...]:
    """A list of strings (numbers and booleans read as text), lower case."""
    if not isinstance(values, list | tuple) or len(values) > MAX_ACCEPTED_VALUES:
        raise ValueError(
            f"mapping.accepted_values: must be a list of at most {MAX_ACCEPTED_VALUES} strings"
        )
    texts = []
    for value in values:
        if isinstance(value, bool):
            texts.append("true" if value else "false")
        elif isinstance(value, str | int):
            texts.append(str(value).strip().lower())
        else:
            raise ValueError("mapping.accepted_values: must be strings")
    return tuple(texts)


def multiplier_of(value: object) -> float:
    problem = "mapping.bid_multiplier: must be a positive finite number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(problem)
    try:
        multiplier = float(value)
    except OverflowError:
        raise ValueError(problem) from None
    if not math.isfinite(multiplier) or multiplier <= 0:
        raise ValueError(problem)
    return multiplier


def offset_of(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("mapping.seconds_offset: must be a whole number")
    if abs(value) > MAX_SECONDS_OFFSET:
        raise ValueError(f"mapping.seconds_offset: at most {MAX_SECONDS_OFFSET} either way")
    return value


def require_some_mapping(mapping: ResponseMapping) -> None:
    if mapping.accepted is None and mapping.bid is None and mapping.number is None:
        raise ValueError("mapping needs at least one of accepted, bid, number")
