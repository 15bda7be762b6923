"""The API documentation pages, `/docs` (Swagger UI) and `/redoc`, served with their assets
from the package (`api/static/docs`, vendored from npm with their licences): nothing is
loaded from a CDN, so the pages work offline and leak no visit to a third party."""

from __future__ import annotations

from pathlib import Path

from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "docs"
PREFIX = "/static/docs"
TITLE = "callbid API"
FAVICON = "/swagger-ui/favicon-32x32.png"


def routes() -> list[BaseRoute]:
    return [
        Route("/docs", swagger_ui, methods=["GET"], include_in_schema=False),
        Route("/redoc", redoc, methods=["GET"], include_in_schema=False),
        Mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets"),
    ]


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _openapi_url(request: Request) -> str:
    url: str = request.app.openapi_url or "/openapi.json"
    return _root(request) + url


async def swagger_ui(request: Request) -> Response:
    assets = _root(request) + PREFIX
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{TITLE} — Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=assets + FAVICON,
        # Swagger UI's default sends the document to validator.swagger.io for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    )


async def redoc(request: Request) -> Response:
    assets = _root(request) + PREFIX
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{TITLE} — ReDoc",
        redoc_js_url=f"{assets}/redoc/redoc.standalone.js",
        redoc_favicon_url=assets + FAVICON,
        with_google_fonts=False,
    )
