"""The console's Jinja2 environment (templates and assets from the package) and its filters."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from callbid.console.words import describe_outcome
from callbid.service.users import Principal

NAV = (
    ("campaigns", "Campaigns", "/console/campaigns"),
    ("rtb", "RTB log", "/console/rtb"),
    ("calls", "Calls", "/console/calls"),
    ("reports", "Reports", "/console/reports"),
)


def _when(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _money(value: float | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("callbid", "console/templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, money=_money, reason=describe_outcome, pretty=_pretty)
    env.globals["nav"] = NAV
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page `name` for `principal` (None on the sign-in page)."""
    response: HTMLResponse = templates.TemplateResponse(
        request, name, {"principal": principal, **context}, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    return response
