"""Publisher endpoints: lean Starlette routes on the hot path (no dependency injection, no
response models), answering Retreaver's shapes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from callbid.api.errors import JSON, error_response, outage_response
from callbid.api.params import read_params
from callbid.api.render import legacy_body, rtb_body
from callbid.domain.errors import CallbidError, InvalidInput
from callbid.runtime import Runtime
from callbid.service.events import log_publisher_request
from callbid.service.ping import (
    PingAnswer,
    confirm_reservation,
    handle_ping,
    read_reservation,
    wipe_reservation,
)

HEALTHY = b'{"status":"ok"}'
UUID_LENGTH = 36


def routes() -> list[BaseRoute]:
    methods = ["GET", "PUT", "PATCH", "DELETE"]
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        _creating("/rtbs.json", create_rtb),
        Route("/rtbs/{uuid}.json", rtb_resource, methods=methods),
        _creating("/call_reservations.json", create_legacy),
    ]


def _creating(path: str, endpoint: Callable[[Request], Awaitable[Response]]) -> Route:
    """A route that pings and reserves, on POST or GET (Retreaver clients send either, the
    parameters in the query string); HEAD is a 405, as it must not reserve anything."""
    route = Route(path, endpoint, methods=["GET", "POST"])
    assert route.methods is not None
    # Starlette serves HEAD for every GET route.
    route.methods.discard("HEAD")
    return route


async def healthz(_request: Request) -> Response:
    return Response(HEALTHY, media_type=JSON)


async def metrics(request: Request) -> Response:
    """Prometheus metrics (ping latency, buyers' outcomes, timeouts, breakers)."""
    runtime: Runtime = request.app.state.runtime
    text, content_type = runtime.metrics.render()
    return Response(text, headers={"Content-Type": content_type})


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type=JSON)


async def _serve(
    request: Request,
    event: str,
    action: Callable[[Runtime, Mapping[str, str]], Awaitable[PingAnswer]],
    shape: Callable[[PingAnswer], dict[str, Any]],
    uuid: str | None = None,
) -> Response:
    """Read the parameters, run `action`, answer in `shape`; every request, answered or
    refused, is logged as `event`."""
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    started = time.perf_counter()
    params: Mapping[str, str] = {}
    try:
        params = await read_params(
            request, max_body=settings.max_body_bytes, max_fields=settings.max_tags + 10
        )
        _check_sizes(params, settings.max_tag_bytes)
        answer = await action(runtime, params)
    except CallbidError as exc:
        refused = error_response(exc)
        _log(runtime, event, params, None, refused.status_code, started, exc.info, uuid)
        return refused
    except Exception as exc:
        outage = outage_response(exc)
        if outage is None:
            raise
        _log(runtime, event, params, None, outage.status_code, started, "outage", uuid)
        return outage
    _log(runtime, event, params, answer, 200, started)
    return _json(shape(answer))


def _log(
    runtime: Runtime,
    event: str,
    params: Mapping[str, str],
    answer: PingAnswer | None,
    status: int,
    started: float,
    error: str | None = None,
    uuid: str | None = None,
) -> None:
    key = params.get("key", "").strip()
    config = runtime.configs.cached(key) if key else None
    latency_ms = (time.perf_counter() - started) * 1000
    log_publisher_request(
        event,
        params,
        config,
        answer,
        http_status=status,
        latency_ms=latency_ms,
        error=error,
        uuid=uuid,
    )


def _check_sizes(params: Mapping[str, str], max_bytes: int) -> None:
    for name, value in params.items():
        if len(name) > 100 or len(value) > max_bytes:
            raise InvalidInput(f"FAILED parameter {name[:40]!r} is too long")
        if "\x00" in value or "\x00" in name:
            raise InvalidInput(f"FAILED parameter {name[:40]!r} holds a NUL character")


async def create_rtb(request: Request) -> Response:
    """POST (or GET) /rtbs.json: ping for a buyer and reserve it."""
    return await _serve(request, "ping", handle_ping, rtb_body)


async def create_legacy(request: Request) -> Response:
    """POST (or GET) /call_reservations.json: the deprecated Call Reservation API."""

    async def ping(runtime: Runtime, params: Mapping[str, str]) -> PingAnswer:
        return await handle_ping(runtime, params, api="legacy")

    return await _serve(request, "ping.legacy", ping, legacy_body)


async def rtb_resource(request: Request) -> Response:
    """GET (read), PUT/PATCH (confirm) or DELETE (release) /rtbs/{uuid}.json."""
    uuid = str(request.path_params["uuid"]).lower()
    if len(uuid) != UUID_LENGTH:
        return error_response(InvalidInput("FAILED malformed reservation uuid"))
    event, handler = {
        "GET": ("read", read_reservation),
        "HEAD": ("read", read_reservation),
        "PUT": ("confirm", confirm_reservation),
        "PATCH": ("confirm", confirm_reservation),
        "DELETE": ("release", wipe_reservation),
    }[request.method]

    async def act(runtime: Runtime, params: Mapping[str, str]) -> PingAnswer:
        return await handler(runtime, params, uuid)

    return await _serve(request, event, act, rtb_body, uuid)
