"""One place where errors become HTTP answers: `{"status": "failed", "info": ...}`."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from callbid.adapters.outage import OutageLog, is_outage, storage_unavailable
from callbid.domain.errors import CallbidError, InvalidField

JSON = "application/json"

log = logging.getLogger(__name__)
report_outage = OutageLog(log)


def failed(status: int, info: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"status": "failed", "info": info})
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def error_response(exc: CallbidError) -> Response:
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return failed(exc.status, exc.info, headers)


async def handle_callbid_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CallbidError)
    return error_response(exc)


async def handle_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    info = exc.detail if isinstance(exc.detail, str) else "request refused"
    return failed(exc.status_code, info, dict(exc.headers) if exc.headers else None)


async def handle_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc.errors())


async def handle_invalid_field(_request: Request, exc: Exception) -> Response:
    """A field refused by a business rule answers like one refused by the body's schema."""
    assert isinstance(exc, InvalidField)
    return validation_response([{"loc": ("body", *loc), "msg": msg} for loc, msg in exc.problems])


def validation_response(errors: Sequence[Any]) -> Response:
    """422 listing every problem, each with its `loc` (`body`, then the field path)."""
    problems = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in errors
    ]
    info = "; ".join(f"{'.'.join(p['loc'][1:]) or p['loc'][0]}: {p['msg']}" for p in problems)
    body = orjson.dumps({"status": "failed", "info": info or "invalid request", "errors": problems})
    return Response(body, status_code=422, media_type=JSON)


def outage_response(exc: Exception) -> Response | None:
    """503 with Retry-After when `exc` means a backing service is down (logged, at most once
    per few seconds); None otherwise."""
    if not is_outage(exc):
        return None
    report_outage("storage", exc)
    return error_response(storage_unavailable())
