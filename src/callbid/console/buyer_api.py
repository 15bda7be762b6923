"""A target's buyer API (passthrough) page: choose a template, edit URL, headers, body and
answer mapping, try it once ("test": the rendered request, the raw answer, what it means, the
latency; nothing reserved) and save it through the targets' use case."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from callbid.api.auth import runtime_of
from callbid.console.auth import checked_form, console_principal
from callbid.console.config_pages import require_admin
from callbid.console.forms import Field, FormState, note_refusal, typed_values
from callbid.console.templating import render
from callbid.domain.errors import CallbidError
from callbid.service.admin import targets
from callbid.service.admin.context import Admin
from callbid.service.admin.passthrough import PassthroughIn
from callbid.service.admin.schemas import TargetUpdate
from callbid.service.trial import SAMPLE_CALLER, SAMPLE_TAGS, try_passthrough

MAPPING = ("accepted", "bid", "number", "seconds", "reason")
FIELDS = (
    Field(
        "template",
        "Template",
        "select",
        choices=(
            ("custom", "Custom"),
            ("ringba", "Ringba RTB"),
            ("callgrid", "CallGrid bid API"),
            ("retreaver", "Retreaver RTB"),
            ("callbid", "callbid (another engine)"),
        ),
    ),
    Field(
        "url",
        "URL",
        help="http(s); [caller_number], [caller_zip], [publisher_id], … are replaced on each ping",
        required=True,
    ),
    Field(
        "method",
        "Method",
        "select",
        choices=(("", "the template's"), ("GET", "GET"), ("POST", "POST"), ("PUT", "PUT")),
    ),
    Field("headers", "Headers", "textarea", "one per line: Name: value"),
    Field("body", "Body", "textarea", "empty: the template's; [tokens] are replaced"),
    Field("content_type", "Content type", help="empty: the template's"),
    Field(
        "number_mode",
        "The buyer's number is",
        "select",
        choices=(
            ("", "the template's"),
            ("transfer", "given to the publisher to transfer to"),
            ("dial", "dialled by callbid when the call arrives"),
        ),
    ),
    *(
        Field(f"mapping_{name}", f"Answer: {name}", help="JMESPath over its JSON, or re:<regex>")
        for name in MAPPING
    ),
)


def stored_of(values: dict[str, Any], state: FormState) -> dict[str, Any]:
    """The passthrough as stored (only what was given) from the typed values."""
    config: dict[str, Any] = {
        "template": values.get("template") or "custom",
        "url": values.get("url", ""),
    }
    for name in ("method", "body", "content_type", "number_mode"):
        if values.get(name):
            config[name] = values[name]
    headers = {}
    for line in str(values.get("headers", "")).splitlines():
        if line.strip():
            name, sep, value = line.partition(":")
            if not sep:
                state.add("headers", f"{line.strip()!r}: write Name: value")
            headers[name.strip()] = value.strip()
    if headers:
        config["headers"] = headers
    mapping = {name: values[f"mapping_{name}"] for name in MAPPING if values.get(f"mapping_{name}")}
    if mapping:
        config["mapping"] = mapping
    return config


def values_of(stored: dict[str, Any] | None) -> dict[str, Any]:
    stored = stored or {}
    values = {f.name: "" for f in FIELDS}
    values.update({k: str(v) for k, v in stored.items() if k in values})
    values["template"] = stored.get("template", "custom")
    values["headers"] = "\n".join(f"{k}: {v}" for k, v in (stored.get("headers") or {}).items())
    for name, expression in (stored.get("mapping") or {}).items():
        if name in MAPPING:
            values[f"mapping_{name}"] = str(expression)
    return values


def _checked(state: FormState, config: dict[str, Any]) -> PassthroughIn | None:
    try:
        return PassthroughIn.model_validate(config)
    except ValidationError as refused:
        note_refusal(state, refused, FIELDS)
        return None


def _page(
    request: Request, principal: Any, target: Any, state: FormState, **extra: Any
) -> Response:
    return render(
        request,
        "buyer_api.html",
        principal,
        section="campaigns",
        target=target,
        state=state,
        fields=FIELDS,
        campaign=request.query_params.get("campaign", ""),
        sample={"caller_number": SAMPLE_CALLER, **SAMPLE_TAGS},
        **extra,
    )


async def buyer_api_page(
    request: Request, target_id: int, principal: Any = Depends(console_principal)
) -> Response:
    require_admin(principal)
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        found = await targets.read_target(Admin(session, runtime, principal.company_id), target_id)
    return _page(request, principal, found.row, FormState(values_of(found.row.passthrough)))


async def buyer_api_submit(
    request: Request, target_id: int, principal: Any = Depends(console_principal)
) -> Response:
    """`action` test: one trial ping, shown beside the form; save: stored on the target;
    remove: the target has no buyer API any more."""
    require_admin(principal)
    form = await checked_form(request, principal)
    runtime = runtime_of(request)
    state = FormState(typed_values(form, FIELDS))
    action = form.get("action")
    config = stored_of(state.values, state)
    async with runtime.sessions() as session:
        admin = Admin(session, runtime, principal.company_id)
        found = await targets.read_target(admin, target_id)
        if action == "remove":
            await targets.update_target(admin, target_id, TargetUpdate(passthrough=None))
            return RedirectResponse(_back(request), status_code=303)
        passthrough = _checked(state, config)
        if passthrough is None or state.errors:
            return _page(request, principal, found.row, state, status_code=400)
        if action == "test":
            return await _trial(request, principal, found.row, state, passthrough)
        try:
            await targets.update_target(admin, target_id, TargetUpdate(passthrough=passthrough))
        except CallbidError as refused:
            note_refusal(state, refused, FIELDS)
            return _page(request, principal, found.row, state, status_code=400)
    return RedirectResponse(_back(request), status_code=303)


async def _trial(
    request: Request, principal: Any, target: Any, state: FormState, passthrough: PassthroughIn
) -> Response:
    runtime = runtime_of(request)
    refused = await runtime.outbound.refusal(passthrough.url)
    if refused is not None:
        state.add("url", refused)
        return _page(request, principal, target, state, status_code=400)
    trial = await try_passthrough(runtime, passthrough.stored())
    return _page(request, principal, target, state, trial=trial.as_dict())


def _back(request: Request) -> str:
    campaign = request.query_params.get("campaign", "")
    return f"/console/campaigns/{campaign}" if campaign.isdigit() else "/console/campaigns"
