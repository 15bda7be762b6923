"""The configuration forms: new, edit and delete for every entity of `console.entities`, through
the same use cases as the REST API. Field errors are shown next to their field in the API's
words, with what was typed kept; viewers see no form and their posts are refused."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import Depends, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from callbid.adapters.phone import to_e164
from callbid.adapters.storage import tables as t
from callbid.api.auth import runtime_of
from callbid.console.auth import checked_form, console_principal
from callbid.console.entities import CAMPAIGNS, ENTITIES, TARGETS, Entity
from callbid.console.forms import FormState, note_refusal, to_body, typed_values
from callbid.console.templating import render
from callbid.domain.errors import CallbidError, Forbidden, NotFound
from callbid.service.admin import campaigns, rtb_keys, webhooks
from callbid.service.admin.common import Linked
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import CampaignUpdate
from callbid.service.users import Principal

MAX_UPLOAD_BYTES = 5_000_000
DELIVERIES_SHOWN = 100
VIEWERS_REFUSED = "viewers can change nothing here: ask an admin of your company"


def require_admin(principal: Principal) -> None:
    if not principal.can_change:
        raise Forbidden(VIEWERS_REFUSED)


def _entity(slug: str) -> Entity:
    entity = ENTITIES.get(slug)
    if entity is None:
        raise NotFound("page not found")
    return entity


def _item_id(entity: Entity, raw: str) -> Any:
    if entity is ENTITIES["keys"]:
        return raw
    if not raw.isdigit():
        raise NotFound(f"{entity.title} not found")
    return int(raw)


def _back(campaign_id: int | None) -> str:
    return f"/console/campaigns/{campaign_id}" if campaign_id else "/console/campaigns"


SOURCES: dict[str, Any] = {
    "targets": (t.Target, t.Target.name),
    "groups": (t.TargetGroup, t.TargetGroup.name),
    "caller_lists": (t.CallerList, t.CallerList.name),
}


async def _choices(
    request: Request, principal: Principal, entity: Entity
) -> dict[str, list[tuple[str, str]]]:
    """The company's rows each select or multi of `entity` offers, by field name."""
    found: dict[str, list[tuple[str, str]]] = {}
    async with runtime_of(request).sessions() as session:
        for f in entity.fields:
            if not f.source:
                continue
            model, name = SOURCES[f.source]
            rows = await session.execute(
                select(model.id, name)
                .where(model.company_id == principal.company_id)
                .order_by(name)
            )
            offered = [(str(row_id), label) for row_id, label in rows.all()]
            found[f.name] = [("", "none"), *offered] if f.kind == "select" else offered
    return found


async def _form_page(
    request: Request,
    principal: Principal,
    entity: Entity,
    state: FormState,
    *,
    action: str,
    campaign_id: int | None,
    editing: bool,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "form.html",
        principal,
        section="campaigns",
        entity=entity,
        state=state,
        action=action,
        campaign_id=campaign_id,
        editing=editing,
        status_code=status_code,
        choices=await _choices(request, principal, entity),
    )


async def new_form(
    request: Request,
    slug: str,
    campaign_id: int | None = None,
    principal: Principal = Depends(console_principal),
) -> Response:
    entity = _entity(slug)
    require_admin(principal)
    action = request.url.path
    return await _form_page(
        request,
        principal,
        entity,
        FormState(entity.defaults()),
        action=action,
        campaign_id=campaign_id,
        editing=False,
    )


async def create(
    request: Request,
    slug: str,
    campaign_id: int | None = None,
    principal: Principal = Depends(console_principal),
) -> Response:
    entity = _entity(slug)
    require_admin(principal)
    form = await checked_form(request, principal)
    state = FormState(typed_values(form, entity.fields))
    await _add_uploaded_numbers(form, state)
    body = to_body(state.values, entity.fields, state)
    if entity.in_campaign:
        body["campaign_id"] = campaign_id
    created = None
    if not state.errors:
        created = await _run(
            request, principal, state, entity, _creating(entity, body, campaign_id)
        )
    if created is None:
        return await _form_page(
            request,
            principal,
            entity,
            state,
            action=request.url.path,
            campaign_id=campaign_id,
            editing=False,
            status_code=400,
        )
    if entity is CAMPAIGNS:
        return RedirectResponse(_back(_row(created).id), status_code=303)
    return RedirectResponse(_back(campaign_id), status_code=303)


async def _add_uploaded_numbers(form: Any, state: FormState) -> None:
    """A caller list's CSV upload: each cell that reads as a phone number joins `numbers`."""
    upload = form.get("numbers_csv")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return
    try:
        raw = await upload.read(MAX_UPLOAD_BYTES + 1)
    finally:
        await upload.close()
    if len(raw) > MAX_UPLOAD_BYTES:
        state.add("numbers", f"the file is over {MAX_UPLOAD_BYTES // 1_000_000} MB")
        return
    cells = (
        c.strip() for row in csv.reader(io.StringIO(raw.decode("utf-8", "replace"))) for c in row
    )
    found = [cell for cell in cells if to_e164(cell)]
    if not found:
        state.add("numbers", f"{upload.filename}: no phone number in it")
        return
    typed = str(state.values.get("numbers", ""))
    state.values["numbers"] = "\n".join(filter(None, [typed, *found]))


def _creating(entity: Entity, body: dict[str, Any], campaign_id: int | None) -> Any:
    async def use(admin: Admin) -> Any:
        created = await entity.create(admin, entity.create_command.model_validate(body))
        if entity is TARGETS and campaign_id is not None:
            pool = await campaigns.read_campaign(admin, campaign_id)
            wanted = CampaignUpdate(target_ids=[*pool.ids, _row(created).id])
            await campaigns.update_campaign(admin, campaign_id, wanted)
        return created

    return use


def _row(found: Any) -> Any:
    return found.row if isinstance(found, Linked) else found


async def _run(
    request: Request, principal: Principal, state: FormState, entity: Entity, use: Any
) -> Any:
    """`use(admin)` on a session of its own; a refusal is noted in `state` (None returned)."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        admin = Admin(session, runtime, principal.company_id)
        try:
            return await use(admin) or True
        except (ValidationError, CallbidError) as refused:
            if isinstance(refused, NotFound) and ": " not in refused.info:
                raise
            note_refusal(state, refused, entity.fields)
            return None


async def edit_form(
    request: Request, slug: str, item_id: str, principal: Principal = Depends(console_principal)
) -> Response:
    entity = _entity(slug)
    require_admin(principal)
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        found = await entity.read(
            Admin(session, runtime, principal.company_id), _item_id(entity, item_id)
        )
    campaign_id = getattr(_row(found), "campaign_id", None) or _campaign_param(request)
    return await _form_page(
        request,
        principal,
        entity,
        FormState(entity.values_of(found)),
        action=request.url.path,
        campaign_id=campaign_id,
        editing=True,
    )


def _campaign_param(request: Request) -> int | None:
    raw = request.query_params.get("campaign", "")
    return int(raw) if raw.isdigit() else None


async def update(
    request: Request, slug: str, item_id: str, principal: Principal = Depends(console_principal)
) -> Response:
    entity = _entity(slug)
    require_admin(principal)
    form = await checked_form(request, principal)
    key = _item_id(entity, item_id)
    state = FormState(typed_values(form, entity.fields))
    await _add_uploaded_numbers(form, state)
    body = to_body(state.values, entity.fields, state)
    campaign_id = _campaign_param(request)

    async def use(admin: Admin) -> Any:
        return await entity.update(admin, key, entity.update_command.model_validate(body))

    updated = None if state.errors else await _run(request, principal, state, entity, use)
    if updated is None:
        return await _form_page(
            request,
            principal,
            entity,
            state,
            action=request.url.path,
            campaign_id=campaign_id,
            editing=True,
            status_code=400,
        )
    return RedirectResponse(
        _back(getattr(_row(updated), "campaign_id", None) or campaign_id), status_code=303
    )


async def delete(
    request: Request, slug: str, item_id: str, principal: Principal = Depends(console_principal)
) -> Response:
    entity = _entity(slug)
    require_admin(principal)
    await checked_form(request, principal)
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        await entity.delete(
            Admin(session, runtime, principal.company_id), _item_id(entity, item_id)
        )
    back = None if entity is CAMPAIGNS else _campaign_param(request)
    return RedirectResponse(_back(back), status_code=303)


async def new_campaign_form(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    return await new_form(request, CAMPAIGNS.slug, None, principal)


async def create_campaign(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    return await create(request, CAMPAIGNS.slug, None, principal)


async def rotate_key(
    request: Request, item_id: str, principal: Principal = Depends(console_principal)
) -> Response:
    """A new key replaces this one (same settings); back to its campaign."""
    require_admin(principal)
    await checked_form(request, principal)
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        fresh = await rtb_keys.rotate_key(Admin(session, runtime, principal.company_id), item_id)
    return RedirectResponse(_back(fresh.campaign_id), status_code=303)


async def new_company_form(
    request: Request, slug: str, principal: Principal = Depends(console_principal)
) -> Response:
    """A row that belongs to no campaign (a target group, a caller list)."""
    return await new_form(request, slug, None, principal)


async def create_company_row(
    request: Request, slug: str, principal: Principal = Depends(console_principal)
) -> Response:
    return await create(request, slug, None, principal)


async def deliveries_page(
    request: Request, webhook_id: int, principal: Principal = Depends(console_principal)
) -> Response:
    """A pixel's delivery log: each rendered request, its status and every attempt."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        admin = Admin(session, runtime, principal.company_id)
        pixel = await webhooks.read_webhook(admin, webhook_id)
        found = await webhooks.list_deliveries(admin, webhook_id, DELIVERIES_SHOWN, 0)
    return render(
        request,
        "deliveries.html",
        principal,
        section="campaigns",
        pixel=pixel,
        deliveries=found,
    )


async def resend(
    request: Request,
    webhook_id: int,
    delivery_id: str,
    principal: Principal = Depends(console_principal),
) -> Response:
    require_admin(principal)
    await checked_form(request, principal)
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        admin = Admin(session, runtime, principal.company_id)
        await webhooks.resend_delivery(admin, webhook_id, delivery_id)
    return RedirectResponse(f"/console/pixels/{webhook_id}/deliveries", status_code=303)
