"""The publisher endpoints in the OpenAPI document, written by hand: they are lean Starlette
routes (no models, no dependency injection), so FastAPI cannot describe them itself.

`install_openapi(app)` makes `app.openapi()` FastAPI's own document plus these paths, their
schemas and a `publisher` tag, built once and cached as FastAPI caches its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from callbid.domain.decide import PingStatus
from callbid.domain.reasons import ReasonCode

Json = dict[str, Any]

TAG = "publisher"
TAG_INFO: Json = {
    "name": TAG,
    "description": (
        "Retreaver-compatible RTB API. Every call takes its parameters from the query string, "
        "a form body or a JSON body, merged (the body wins); any parameter that is not named "
        "below is a tag of the ping."
    ),
}
SCHEMAS = "#/components/schemas/"


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi` answer FastAPI's document with the publisher endpoints merged in."""
    fastapi_openapi = app.openapi

    def openapi() -> Json:
        if app.openapi_schema is None:
            app.openapi_schema = merged(fastapi_openapi())
        return app.openapi_schema

    # FastAPI's documented way to extend its document.
    app.openapi = openapi  # type: ignore[method-assign]


def merged(schema: Json) -> Json:
    """`schema` with the publisher paths first, their schemas and their tag."""
    schema["paths"] = paths() | schema.get("paths", {})
    schema.setdefault("components", {}).setdefault("schemas", {}).update(schemas())
    schema["tags"] = [TAG_INFO, *schema.get("tags", [])]
    return schema


def paths() -> Json:
    create = _creation("createRtb", "Ping for a buyer and reserve it", "RtbAnswer")
    legacy = _creation(
        "createCallReservation",
        "Reserve a buyer (the Call Reservation API; use /rtbs.json)",
        "CallReservationAnswer",
        deprecated=True,
    )
    return {
        "/rtbs.json": create,
        "/rtbs/{uuid}.json": _resource(),
        "/call_reservations.json": legacy,
    }


def _creation(operation_id: str, summary: str, answer: str, *, deprecated: bool = False) -> Json:
    description = (
        "Evaluates every target of the key's campaign (filters, hours, caps, duplicates), "
        "pings eligible buyers in parallel under the key's timeout and reserves the winner. "
        "A repeat ping for the same caller while a reservation is live answers the first "
        "answer unchanged plus `retreaver_ping_shield: true`. GET is served exactly as POST, "
        "with the parameters in the query string."
    )

    def operation(method: str, body: bool) -> Json:
        op: Json = {
            "tags": [TAG],
            "operationId": f"{operation_id}{method}",
            "summary": summary,
            "description": description,
            "parameters": _ping_parameters(),
            "responses": _responses(answer, 400, 401, 403, 413, 415, 429),
        }
        if body:
            op["requestBody"] = _body(_ping_fields())
        if deprecated:
            op["deprecated"] = True
        return op

    return {"post": operation("", body=True), "get": operation("Get", body=False)}


def _resource() -> Json:
    def operation(operation_id: str, summary: str, *, confirm: bool = False) -> Json:
        parameters = [_uuid(), _query("key", "the RTB key that made the reservation", True)]
        if confirm:
            parameters.append(
                _query(
                    "status", "must be `confirmed`", True, {"type": "string", "enum": ["confirmed"]}
                )
            )
        return {
            "tags": [TAG],
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters,
            "responses": _responses("RtbAnswer", 400, 401, 403, 404, 409, 429),
        }

    confirm = "Confirm a reservation: it counts against caps (`no-target` if they filled)"
    return {
        "get": operation("readRtb", "The publisher's view of its reservation, current status"),
        "put": operation("confirmRtb", confirm, confirm=True),
        "patch": operation("confirmRtbPatch", confirm, confirm=True),
        "delete": operation("wipeRtb", "Release a reservation (`wiped`), freeing capacity"),
    }


def _ping_fields() -> list[tuple[str, str, bool]]:
    """The named ping parameters: (name, description, required)."""
    return [
        ("key", "the RTB key (its campaign, timeout, TTL, shield scope)", True),
        ("publisher_id", "the publisher (aliases: `source_id`, `affiliate_id`)", True),
        ("source_id", "alias of `publisher_id`", False),
        ("affiliate_id", "alias of `publisher_id`", False),
        (
            "caller_number",
            "the caller, any format the number plan reads (normalised to E.164); "
            "required unless the key allows pings without one",
            False,
        ),
        (
            "inbound_number",
            "a tracking number of the campaign: the call is then expected on it",
            False,
        ),
    ]


def _ping_parameters() -> list[Json]:
    named = [_query(name, text, required) for name, text, required in _ping_fields()]
    tags = {
        "name": "tags",
        "in": "query",
        "description": (
            "any other parameter is a tag (`caller_zip=10001`, `age=65`, …), matched by "
            "targets' tag filters and sent to buyers"
        ),
        "style": "form",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    return [*named, tags]


def _body(fields: list[tuple[str, str, bool]]) -> Json:
    schema: Json = {
        "type": "object",
        "description": "the same parameters as the query string (the body wins); tags too",
        "properties": {name: {"type": "string", "description": text} for name, text, _ in fields},
        "additionalProperties": {"type": "string"},
    }
    return {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {"schema": schema},
            "application/json": {"schema": schema},
        },
    }


def _query(name: str, description: str, required: bool, schema: Json | None = None) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _uuid() -> Json:
    return {
        "name": "uuid",
        "in": "path",
        "required": True,
        "description": "the reservation's uuid",
        "schema": {"type": "string", "format": "uuid"},
    }


FAILURES = {
    400: "invalid input (a missing `caller_number`, a malformed parameter)",
    401: "missing or unknown key",
    403: "paused key or blocked publisher",
    404: "no such reservation for this key",
    409: "the reservation can no longer change",
    413: "body larger than the limit",
    415: "unsupported content type",
    429: "rate limited (see `Retry-After`)",
}


def _responses(answer: str, *failures: int) -> Json:
    responses: Json = {
        "200": {
            "description": "the answer (also `no-target` and `rejected`: a 200)",
            "content": {"application/json": {"schema": {"$ref": SCHEMAS + answer}}},
        }
    }
    for status in failures:
        responses[str(status)] = {
            "description": FAILURES[status],
            "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Failure"}}},
        }
    responses["503"] = {
        "description": "a backing store is unavailable (see `Retry-After`)",
        "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Failure"}}},
    }
    return responses


def schemas() -> Json:
    return {
        "RtbAnswer": _rtb_answer(),
        "CallReservationAnswer": _legacy_answer(),
        "Failure": {
            "type": "object",
            "required": ["status", "info"],
            "properties": {
                "status": {"type": "string", "enum": ["failed"]},
                "info": {"type": "string"},
            },
        },
    }


def _enum(values: type[PingStatus] | type[ReasonCode]) -> Json:
    return {"type": "string", "enum": [str(value) for value in values]}


def _rtb_answer() -> Json:
    return {
        "type": "object",
        "required": ["uuid", "status"],
        "properties": {
            "uuid": {"type": "string", "format": "uuid"},
            "status": _enum(PingStatus),
            "retreaver_payout": {"type": "number", "description": "the publisher's payout"},
            "retreaver_seconds": {
                "type": "integer",
                "description": "seconds the call must last to pay",
            },
            "inbound_number": {
                "type": "string",
                "description": "the number to send the call to (E.164 or a `sip:` URI)",
            },
            "expires_at": {
                "type": "string",
                "format": "date-time",
                "description": "ISO-8601 UTC with milliseconds and a Z",
            },
            "info": {"type": "string", "description": "a `rejected` answer's public reason"},
            "reason_code": {
                **_enum(ReasonCode),
                "description": "why a `no-target` or `rejected` answer (stable codes)",
            },
            "retreaver_ping_shield": {
                "type": "boolean",
                "description": "true on a repeat ping answered with the first answer",
            },
        },
    }


def _legacy_answer() -> Json:
    text = {"type": ["string", "null"]}
    stamp = {"type": ["string", "null"], "format": "date-time"}
    call = {
        "type": "object",
        "properties": {
            "uuid": {"type": "string", "format": "uuid"},
            "formatted_caller_number": text,
            "status": _enum(PingStatus),
            "start_time": stamp,
            "end_time": stamp,
            "caller_number": text,
            "target_id": {"type": ["integer", "null"]},
            "winning_leg_connected_at": stamp,
            "winning_leg_disconnected_at": stamp,
        },
    }
    pair = {"type": "object", "properties": {"key": {"type": "string"}, "value": text}}
    group = {
        "type": "object",
        "properties": {
            "id": {"type": ["integer", "null"]},
            "payout": {"type": ["number", "null"]},
            "seconds": {"type": ["integer", "null"]},
        },
    }
    reservation = {
        "type": "object",
        "properties": {
            "uuid": {"type": "string", "format": "uuid"},
            "inbound_number": {
                "type": ["integer", "string", "null"],
                "description": "digits without `+` for a phone number, else a `sip:` URI",
            },
            "caller_number": text,
            "status": _enum(PingStatus),
            "expires_at": stamp,
            "claimed_at": stamp,
            "wiped_at": stamp,
            "call": call,
            "matched_targets": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "integer"}}},
            },
            "tag_values": {"type": "array", "items": pair},
            "conversion_groups": {"type": "array", "items": group},
            "info": {"type": "string"},
            "reason_code": _enum(ReasonCode),
        },
    }
    return {
        "type": "object",
        "required": ["call_reservation"],
        "properties": {"call_reservation": reservation},
    }
