"""Reading a publisher request's parameters from query string, form or JSON body, merged.

Everything is bounded: body size, number of fields, field size; anything malformed is a 4xx
with a message, never an exception escaping to a 500.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from callbid.domain.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
MULTIPART = "multipart/form-data"


async def read_params(request: Request, *, max_body: int, max_fields: int) -> dict[str, str]:
    """Query parameters, then body parameters (which win on a clash); names lower-cased."""
    params = _parse_query(request.scope.get("query_string", b""), max_fields)
    body = await _read_body(request, max_body)
    if body:
        params.update(await _parse_body(request, body, max_fields))
    return params


def _parse_query(raw: bytes, max_fields: int) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("FAILED query string is not UTF-8") from exc
    return _parse_form(text, max_fields, "query string")


def _parse_form(text: str, max_fields: int, where: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=max_fields)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"FAILED {where} is not UTF-8") from exc
    except ValueError as exc:
        raise InvalidInput(f"FAILED too many parameters in {where} (at most {max_fields})") from exc
    return {name.strip().lower(): value for name, value in pairs}


async def _read_body(request: Request, max_body: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("FAILED invalid Content-Length")
        if int(declared) > max_body:
            raise PayloadTooLarge(f"FAILED body larger than {max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise PayloadTooLarge(f"FAILED body larger than {max_body} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    # Starlette replays a consumed stream from `_body`; multipart parsing needs it.
    setattr(request, "_body", body)  # noqa: B010
    return body


async def _parse_body(request: Request, body: bytes, max_fields: int) -> dict[str, str]:
    content_type = request.headers.get("content-type", FORM).split(";", 1)[0].strip().lower()
    if content_type == JSON_TYPE or content_type.endswith("+json"):
        return _parse_json(body, max_fields)
    if content_type in (FORM, "", "text/plain"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("FAILED body is not UTF-8") from exc
        return _parse_form(text, max_fields, "body")
    if content_type == MULTIPART:
        return await _parse_multipart(request, max_fields)
    raise UnsupportedMediaType(f"FAILED unsupported content type {content_type[:60]!r}")


def _parse_json(body: bytes, max_fields: int) -> dict[str, str]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("FAILED body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidInput("FAILED JSON body must be an object")
    if len(data) > max_fields:
        raise InvalidInput(f"FAILED too many parameters in body (at most {max_fields})")
    params: dict[str, str] = {}
    for name, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[name.strip().lower()] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            params[name.strip().lower()] = str(value)
        else:
            raise InvalidInput(f"FAILED parameter {name[:40]!r} must be a string or a number")
    return params


async def _parse_multipart(request: Request, max_fields: int) -> dict[str, str]:
    try:
        form = await request.form(max_files=0, max_fields=max_fields)
    except Exception as exc:
        raise InvalidInput("FAILED malformed multipart body") from exc
    params: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidInput("FAILED file uploads are not accepted")
        params[name.strip().lower()] = value
    return params
