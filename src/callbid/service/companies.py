"""Companies (tenants): created by the operator, each with one admin bearer token."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.storage.db import create_engine, session_factory
from callbid.adapters.storage.tables import Company
from callbid.api.auth import hash_token, new_token
from callbid.settings import Settings


async def create_company(sessions: async_sessionmaker[AsyncSession], name: str) -> tuple[int, str]:
    """Create a company; returns its id and its admin token (shown once, stored hashed)."""
    token = new_token()
    async with sessions.begin() as session:
        company = Company(name=name, token_hash=hash_token(token))
        session.add(company)
        await session.flush()
        return company.id, token


async def create_company_once(settings: Settings, name: str) -> tuple[int, str]:
    """`create_company` on a short-lived engine, for the command line."""
    engine = create_engine(settings)
    try:
        return await create_company(session_factory(engine), name)
    finally:
        await engine.dispose()
