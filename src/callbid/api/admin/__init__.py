"""Admin REST API under /api/v1: one company's configuration, behind its bearer token.

Every route is scoped to the company of the `Authorization: Bearer` token: another company's
objects answer 404 exactly like missing ones, also when referenced by id inside a body. Every
successful write drops the company's cached ping configuration, so changes apply to the next
ping.
"""

from __future__ import annotations

from fastapi import APIRouter

from callbid.api.admin import (
    caller_lists,
    campaigns,
    company,
    criteria,
    groups,
    numbers,
    publishers,
    replay,
    reports,
    rtb_keys,
    targets,
    trials,
    webhooks,
)


def admin_router() -> APIRouter:
    """The admin routes, to be mounted under `/api/v1`."""
    router = APIRouter()
    for part in (
        company.router,
        campaigns.router,
        numbers.pools,
        numbers.numbers,
        targets.router,
        groups.router,
        publishers.router,
        criteria.router,
        rtb_keys.router,
        caller_lists.router,
        webhooks.router,
        reports.router,
        replay.router,
        trials.router,
    ):
        router.include_router(part)
    return router
