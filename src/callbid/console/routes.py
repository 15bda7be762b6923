"""The console's routes, its packaged assets and its error pages, installed on the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from callbid.api.errors import handle_callbid_error, handle_http_error, handle_validation_error
from callbid.console import (
    auth,
    buyer_api,
    campaigns,
    config_pages,
    logs,
    pages,
    reports,
)
from callbid.domain.errors import CallbidError, NotFound

ASSETS = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the console's pages under `/console`, its assets under `/console/static`, the
    sign-in redirect, and HTML error pages for browsers (JSON stays for API clients)."""
    app.include_router(_router())
    app.mount("/console/static", StaticFiles(directory=ASSETS), name="console-assets")
    app.add_exception_handler(auth.SignInRequired, _sign_in_required)
    app.add_exception_handler(CallbidError, _callbid_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


def _router() -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    router.add_api_route("", _home, methods=["GET"])
    router.add_api_route("/login", auth.sign_in_page, methods=["GET"])
    router.add_api_route("/login", auth.sign_in_submit, methods=["POST"])
    router.add_api_route("/logout", auth.sign_out, methods=["POST"])
    router.add_api_route("/campaigns", campaigns.campaigns_page, methods=["GET"])
    router.add_api_route("/campaigns/new", config_pages.new_campaign_form, methods=["GET"])
    router.add_api_route("/campaigns/new", config_pages.create_campaign, methods=["POST"])
    router.add_api_route("/campaigns/{campaign_id}", campaigns.overview_page, methods=["GET"])
    router.add_api_route("/campaigns/{campaign_id}/links", campaigns.links_page, methods=["GET"])
    router.add_api_route(
        "/campaigns/{campaign_id}/{slug}/new", config_pages.new_form, methods=["GET"]
    )
    router.add_api_route(
        "/campaigns/{campaign_id}/{slug}/new", config_pages.create, methods=["POST"]
    )
    router.add_api_route(
        "/targets/{target_id}/buyer-api", buyer_api.buyer_api_page, methods=["GET"]
    )
    router.add_api_route(
        "/targets/{target_id}/buyer-api", buyer_api.buyer_api_submit, methods=["POST"]
    )
    router.add_api_route(
        "/pixels/{webhook_id}/deliveries", config_pages.deliveries_page, methods=["GET"]
    )
    router.add_api_route(
        "/pixels/{webhook_id}/deliveries/{delivery_id}/resend",
        config_pages.resend,
        methods=["POST"],
    )
    router.add_api_route("/new/{slug}", config_pages.new_company_form, methods=["GET"])
    router.add_api_route("/new/{slug}", config_pages.create_company_row, methods=["POST"])
    router.add_api_route("/keys/{item_id}/rotate", config_pages.rotate_key, methods=["POST"])
    router.add_api_route("/{slug}/{item_id}/edit", config_pages.edit_form, methods=["GET"])
    router.add_api_route("/{slug}/{item_id}/edit", config_pages.update, methods=["POST"])
    router.add_api_route("/{slug}/{item_id}/delete", config_pages.delete, methods=["POST"])
    router.add_api_route("/rtb", logs.rtb_log, methods=["GET"])
    router.add_api_route("/rtb/rows", logs.rtb_rows, methods=["GET"])
    router.add_api_route("/calls", logs.calls_log, methods=["GET"])
    router.add_api_route("/calls/rows", logs.call_rows, methods=["GET"])
    router.add_api_route("/calls/{uuid}", pages.call_page, methods=["GET"])
    router.add_api_route("/reservations/{uuid}/replay", pages.replay_page, methods=["POST"])
    router.add_api_route("/reports", reports.reports_page, methods=["GET"])
    router.add_api_route("/reports.csv", reports.reports_csv, methods=["GET"])
    return router


async def _home() -> Response:
    return RedirectResponse(auth.HOME, status_code=303)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    return auth.redirect_to_sign_in(request, exc)


def _for_browser(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/console") or (
        path.startswith("/call_reservations/")
        and pages.prefers_html(request.headers.get("accept", ""))
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    """A console address whose id is not one (`/console/campaigns/abc`) is a page not found."""
    if request.url.path.startswith("/console"):
        return auth.error_page(request, NotFound("page not found"), 404)
    return await handle_validation_error(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/console"):
        message = "page not found" if exc.status_code == 404 else str(exc.detail)
        return auth.error_page(request, CallbidError(message), exc.status_code)
    return await handle_http_error(request, exc)


async def _callbid_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CallbidError)
    if _for_browser(request):
        response = auth.error_page(request, exc, exc.status)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        return response
    return await handle_callbid_error(request, exc)
