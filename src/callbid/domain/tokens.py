"""`[token]` templates: a request's URL, headers and body with each token replaced by its value,
escaped for where it lands, so that no value can break the request's syntax. Pure, no I/O.

Buyer pings (`adapters/buyers/dialect.py`) and pixels (`domain/pixels.py`) both render here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring, encode_basestring_ascii
from urllib.parse import quote, quote_plus

#: `[caller_number]`, `[caller.zip]`, `[sub-id]`: letters, digits, `_`, `.` and `-`.
TOKEN = re.compile(r"\[([A-Za-z0-9_.\-]+)\]")
#: What must never reach a header value: C0 and C1 controls (CR, LF among them), DEL, and the
#: Unicode line separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

Encoder = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class RenderedParts:
    """A request's templates once substituted; `body` None when it sends none."""

    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None


def render_parts(
    url: str,
    headers: tuple[tuple[str, str], ...],
    body: str | None,
    content_type: str,
    tokens: Mapping[str, str],
) -> RenderedParts:
    """The request's URL, headers and body with every `[token]` substituted (unknown tokens
    become empty).

    Values are percent-encoded in the URL, stripped of control characters in headers, and
    escaped for the body's content type (JSON string escapes, form encoding, else raw). A
    `Content-Type` header is added when a body is sent and the headers set none.
    """
    rendered_url = substitute(url, tokens, url_value)
    rendered_headers = tuple(
        (name, header_value(substitute(value, tokens, raw_value))) for name, value in headers
    )
    if body is None:
        return RenderedParts(rendered_url, rendered_headers, None)
    text = substitute(body, tokens, body_encoder(content_type))
    if not any(name.lower() == "content-type" for name, _ in rendered_headers):
        rendered_headers += (("Content-Type", content_type),)
    return RenderedParts(rendered_url, rendered_headers, text)


def substitute(template: str, tokens: Mapping[str, str], encode: Encoder) -> str:
    """`template` with each `[name]` replaced by `encode(tokens[name.lower()])`."""
    if "[" not in template:
        return template
    return TOKEN.sub(lambda m: encode(tokens.get(m.group(1).lower(), "")), template)


def url_value(value: str) -> str:
    return quote(value, safe="", errors="replace")


def header_value(value: str) -> str:
    """`value` without control characters: a tag can never start a new header line."""
    return _CONTROL.sub("", value)


def form_value(value: str) -> str:
    return quote_plus(value, safe="", errors="replace")


def raw_value(value: str) -> str:
    return value


def json_value(value: str) -> str:
    """`value` escaped as the inside of a JSON string (non-ASCII text kept as it is)."""
    text: str = encode_basestring(value)[1:-1]
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates cannot be sent as UTF-8: escape them as \uXXXX instead.
            escaped: str = encode_basestring_ascii(value)[1:-1]
            return escaped
    return text


def body_encoder(content_type: str) -> Encoder:
    """How token values are escaped in a body of `content_type`."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.endswith("json"):
        return json_value
    if kind == "application/x-www-form-urlencoded":
        return form_value
    return raw_value
