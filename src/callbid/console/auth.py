"""Who a console request is from: a signed session cookie or the company's admin bearer token;
the sign-in and sign-out pages; CSRF checks of every form."""

from __future__ import annotations

import math
import secrets
from urllib.parse import quote

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from callbid.api.auth import company_id_for, runtime_of
from callbid.console.templating import render
from callbid.domain.errors import CallbidError, Forbidden, RateLimited, Unauthorized
from callbid.runtime import Runtime
from callbid.service.users import (
    Principal,
    Role,
    close_session,
    open_session,
    principal_of_session,
    sign_in,
)

SESSION_COOKIE = "callbid_session"
#: Double-submit token of the sign-in form, which has no session to keep one in yet.
SIGN_IN_COOKIE = "callbid_sign_in"
HOME = "/console/rtb"


class SignInRequired(Exception):
    """A console page was asked for without credentials: the browser is sent to sign in."""


def _serializer(runtime: Runtime, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime.console_secret, salt=f"callbid.console.{salt}")


async def console_principal(request: Request) -> Principal:
    """FastAPI dependency: the principal of a console request; SignInRequired without any
    credentials, Unauthorized for a wrong bearer token."""
    runtime = runtime_of(request)
    authorization = request.headers.get("authorization")
    if authorization:
        return Principal(await company_id_for(runtime, authorization), Role.ADMIN)
    principal = await _session_principal(runtime, request.cookies.get(SESSION_COOKIE))
    if principal is None:
        raise SignInRequired
    return principal


async def _session_principal(runtime: Runtime, cookie: str | None) -> Principal | None:
    if not cookie:
        return None
    max_age = int(runtime.settings.session_hours * 3600)
    try:
        session_id = _serializer(runtime, "session").loads(cookie, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(session_id, str):
        return None
    return await principal_of_session(runtime.sessions, session_id, runtime.clock())


async def checked_form(request: Request, principal: Principal) -> FormData:
    """The posted form, once its CSRF token matched the session's; Forbidden otherwise.
    Bearer-token requests carry no token: browsers never attach that header themselves."""
    form = await request.form()
    if principal.csrf_token is not None:
        sent = form.get("csrf_token")
        if not isinstance(sent, str) or not secrets.compare_digest(sent, principal.csrf_token):
            raise Forbidden("CSRF token missing or invalid: reload the page and try again")
    return form


def redirect_to_sign_in(request: Request, _exc: Exception) -> Response:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(wanted, safe='')}", status_code=303)


def _safe_next(value: object) -> str:
    """Only a path on this site: never an absolute or scheme-relative URL."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return HOME


def _secure(request: Request, runtime: Runtime) -> bool:
    public = runtime.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https:")


async def sign_in_page(request: Request) -> Response:
    runtime = runtime_of(request)
    if await _session_principal(runtime, request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _sign_in_form(request, runtime, next_url=_safe_next(request.query_params.get("next")))


def _sign_in_form(
    request: Request,
    runtime: Runtime,
    *,
    next_url: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        None,
        status_code=status_code,
        csrf_token=token,
        next_url=next_url,
        email=email,
        error=error,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request, runtime),
        path="/console/login",
    )
    return response


async def sign_in_submit(request: Request) -> Response:
    """Check the form's token against its cookie, then the password; on success a new session
    cookie and a redirect to where the user was going."""
    runtime = runtime_of(request)
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    next_url = _safe_next(form.get("next"))
    sent, expected = form.get("csrf_token"), request.cookies.get(SIGN_IN_COOKIE)
    if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
        return _sign_in_form(
            request,
            runtime,
            next_url=next_url,
            email=email,
            status_code=403,
            error="The form expired (CSRF token missing or invalid); please sign in again.",
        )
    client = request.client.host if request.client else "unknown"
    try:
        user = await sign_in(runtime.sessions, email, password, client=client, now=runtime.clock())
    except (Unauthorized, RateLimited) as refused:
        status = 429 if isinstance(refused, RateLimited) else 401
        page = _sign_in_form(
            request,
            runtime,
            next_url=next_url,
            email=email,
            error=refused.info,
            status_code=status,
        )
        if refused.retry_after is not None:
            page.headers["Retry-After"] = str(math.ceil(refused.retry_after))
        return page
    hours = runtime.settings.session_hours
    session_id = await open_session(runtime.sessions, user, now=runtime.clock(), hours=hours)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        _serializer(runtime, "session").dumps(session_id),
        max_age=int(hours * 3600),
        httponly=True,
        samesite="lax",
        secure=_secure(request, runtime),
        path="/",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/console/login")
    return response


async def sign_out(request: Request) -> Response:
    principal = await console_principal(request)
    await checked_form(request, principal)
    if principal.session_hash is not None:
        await close_session(runtime_of(request).sessions, principal.session_hash)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def error_page(request: Request, exc: CallbidError, status_code: int) -> Response:
    return render(request, "error.html", None, status_code=status_code, message=exc.info)
