"""Caller lists: callers to refuse (block) or to accept exclusively (allow)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import select

from callbid.adapters.phone import to_e164
from callbid.adapters.storage import tables as t
from callbid.domain.errors import Conflict, InvalidField, Loc
from callbid.domain.model import ListKind
from callbid.service.admin.common import apply, owned, page, save
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import CallerListCreate, CallerListUpdate

MAX_REPORTED = 20


def normalise_numbers(raw: Sequence[str]) -> list[str]:
    """E.164 forms of `raw`, de-duplicated in order; InvalidField naming the bad entries (the
    first MAX_REPORTED) otherwise."""
    good: dict[str, None] = {}
    problems: list[tuple[Loc, str]] = []
    for index, text in enumerate(raw):
        e164 = to_e164(text)
        if e164 is None:
            if len(problems) < MAX_REPORTED:
                problems.append((("numbers", index), f"not a valid phone number: {text!r}"))
            continue
        good[e164] = None
    if problems:
        raise InvalidField(*problems[0], *problems[1:])
    return list(good)


async def normalised(raw: Sequence[str]) -> list[str]:
    # Large lists take seconds to parse: keep the event loop answering pings meanwhile.
    if len(raw) < 1000:
        return normalise_numbers(raw)
    return await asyncio.to_thread(normalise_numbers, raw)


async def campaigns_blocking(admin: Admin, list_id: int) -> list[t.Campaign]:
    """The company's campaigns that use the list as a blocked list."""
    query = select(t.Campaign).where(t.Campaign.company_id == admin.company_id)
    return [c for c in await admin.session.scalars(query) if list_id in (c.blocked_list_ids or [])]


async def create_list(admin: Admin, body: CallerListCreate) -> t.CallerList:
    """A new caller list of the company; InvalidField naming numbers that are not valid."""
    numbers = await normalised(body.numbers)
    row = t.CallerList(company_id=admin.company_id, name=body.name, kind=body.kind, numbers=numbers)
    admin.session.add(row)
    await save(admin)
    return row


async def list_lists(admin: Admin, limit: int, offset: int) -> Sequence[t.CallerList]:
    """One page of the company's caller lists, oldest first."""
    return await page(admin, t.CallerList, limit, offset)


async def read_list(admin: Admin, list_id: int) -> t.CallerList:
    """The company's caller list; NotFound else."""
    return await owned(admin, t.CallerList, list_id, "caller list")


async def update_list(admin: Admin, list_id: int, body: CallerListUpdate) -> t.CallerList:
    """The list with the fields sent changed (`numbers` replaces them all); InvalidField for
    invalid numbers, Conflict for turning it into an allow list while a campaign blocks it."""
    row = await owned(admin, t.CallerList, list_id, "caller list")
    changes = body.changes("numbers")
    if body.sent("numbers"):
        changes["numbers"] = await normalised(body.numbers)
    if body.sent("kind") and body.kind is ListKind.ALLOW:
        users = await campaigns_blocking(admin, row.id)
        if users:
            ids = ", ".join(str(c.id) for c in users)
            raise Conflict(f"campaigns {ids} use this list as a blocked list")
    apply(row, changes)
    await save(admin)
    return row


async def delete_list(admin: Admin, list_id: int) -> None:
    """Delete the company's list: targets using it lose it, campaigns stop blocking it."""
    row = await owned(admin, t.CallerList, list_id, "caller list")
    for campaign in await campaigns_blocking(admin, row.id):
        campaign.blocked_list_ids = [i for i in campaign.blocked_list_ids if i != row.id]
    await admin.session.delete(row)
    await save(admin)
