"""The campaigns pages: the list, a campaign's overview (configuration, live state, warnings)
and the link builder of its RTB keys."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from callbid.adapters.storage import tables as t
from callbid.api.auth import runtime_of
from callbid.console.auth import console_principal
from callbid.console.links import build_links, parse_tags
from callbid.console.templating import render
from callbid.domain.errors import InvalidInput
from callbid.service.overview import campaign_overview
from callbid.service.users import Principal


async def campaigns_page(
    request: Request, principal: Principal = Depends(console_principal)
) -> Response:
    """The company's campaigns, and what belongs to no one campaign: target groups and caller
    lists."""
    company = principal.company_id
    async with runtime_of(request).sessions() as session:

        async def rows(model: Any, order: Any) -> Any:
            found = await session.scalars(
                select(model).where(model.company_id == company).order_by(order)
            )
            return found.all()

        campaigns = await rows(t.Campaign, t.Campaign.id)
        groups = await rows(t.TargetGroup, t.TargetGroup.name)
        lists = await rows(t.CallerList, t.CallerList.name)
    return render(
        request,
        "campaigns.html",
        principal,
        section="campaigns",
        campaigns=campaigns,
        groups=groups,
        lists=lists,
    )


async def overview_page(
    request: Request, campaign_id: int, principal: Principal = Depends(console_principal)
) -> Response:
    overview = await campaign_overview(runtime_of(request), principal.company_id, campaign_id)
    return render(request, "overview.html", principal, section="campaigns", o=overview)


def base_url(request: Request) -> str:
    """Where publishers reach this service: `CALLBID_PUBLIC_URL`, else this request's host."""
    public = runtime_of(request).settings.public_url
    return (public or str(request.base_url)).rstrip("/")


async def links_page(
    request: Request, campaign_id: int, principal: Principal = Depends(console_principal)
) -> Response:
    """The link builder: pick a key and a publisher (or type a new id), add tags, get links."""
    overview = await campaign_overview(runtime_of(request), principal.company_id, campaign_id)
    params = request.query_params
    keys = [key.key for key in overview.keys]
    key = params.get("key") or (keys[0] if keys else "")
    publisher_id = (params.get("publisher_id") or "").strip()
    tags_text = params.get("tags", "")
    links, error = None, None
    if publisher_id:
        try:
            if key not in keys:
                raise InvalidInput("key: not one of this campaign's RTB keys")
            links = build_links(base_url(request), key, publisher_id, parse_tags(tags_text))
        except InvalidInput as refused:
            error = refused.info
    return render(
        request,
        "links.html",
        principal,
        section="campaigns",
        o=overview,
        key=key,
        publisher_id=publisher_id,
        tags=tags_text,
        links=links,
        error=error,
        publishers=sorted(overview.campaign.publishers),
    )
