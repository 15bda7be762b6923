"""The configuration use cases called directly, without HTTP, on a real SQLite session: what
they refuse is a domain error naming the field, and tenants stay apart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callbid.domain.errors import InvalidField, NotFound
from callbid.domain.model import ListKind
from callbid.service.admin import caller_lists, targets
from callbid.service.admin.context import Admin
from callbid.service.admin.schemas import CallerListCreate, TargetCreate, TargetUpdate
from callbid.service.companies import create_company
from tests.conftest import Service

REFUSED_URL = "http://169.254.169.254/latest/meta-data/"


@pytest.fixture
async def admins(service: Service) -> AsyncIterator[tuple[Admin, Admin]]:
    """Contexts of two companies, each on its own session."""
    first, _ = await create_company(service.runtime.sessions, "A")
    second, _ = await create_company(service.runtime.sessions, "B")
    async with service.runtime.sessions() as one, service.runtime.sessions() as other:
        yield Admin(one, service.runtime, first), Admin(other, service.runtime, second)


def buyer(**fields: object) -> TargetCreate:
    return TargetCreate.model_validate({"name": "Buyer", "destination": "+12125550100", **fields})


async def test_create_and_change_a_target(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    created = await targets.create_target(a, buyer(weight=3))
    assert created.row.company_id == a.company_id
    assert created.ids == []
    changed = await targets.update_target(a, created.row.id, TargetUpdate(paused=True))
    assert changed.row.paused
    assert changed.row.weight == 3
    assert [found.row.id for found in await targets.list_targets(a, 10, 0)] == [created.row.id]


async def test_refused_passthrough_url_names_its_field(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    body = buyer(passthrough={"template": "callbid", "url": REFUSED_URL})
    with pytest.raises(InvalidField) as refused:
        await targets.create_target(a, body)
    assert refused.value.loc == ("passthrough", "url")
    assert "link-local" in refused.value.message
    assert await targets.list_targets(a, 10, 0) == []


async def test_bad_numbers_are_each_named(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    body = CallerListCreate(name="l", kind=ListKind.BLOCK, numbers=["+12125550100", "x", "y"])
    with pytest.raises(InvalidField) as refused:
        await caller_lists.create_list(a, body)
    assert [loc for loc, _ in refused.value.problems] == [("numbers", 1), ("numbers", 2)]


async def test_another_companys_caller_list_is_not_found(admins: tuple[Admin, Admin]) -> None:
    a, b = admins
    theirs = await caller_lists.create_list(b, CallerListCreate(name="l", kind=ListKind.BLOCK))
    with pytest.raises(NotFound) as missing:
        await targets.create_target(a, buyer(caller_list_id=theirs.id))
    assert missing.value.info == f"caller_list_id: {theirs.id} not found"
    with pytest.raises(NotFound):
        await caller_lists.read_list(a, theirs.id)
