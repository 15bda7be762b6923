"""The campaigns pages: the list, a campaign's overview (configuration, live state, warnings)
and the link builder of its RTB keys."""

from __future__ import annotations

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
    async with runtime_of(request).sessions() as session:
        found = await session.scalars(
            select(t.Campaign)
            .where(t.Campaign.company_id == principal.company_id)
            .order_by(t.Campaign.id)
        )
        campaigns = found.all()
    return render(request, "campaigns.html", principal, section="campaigns", campaigns=campaigns)


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
