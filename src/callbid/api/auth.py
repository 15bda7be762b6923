"""Company bearer tokens: issue, hash and resolve them to a company id."""

from __future__ import annotations

import hashlib
import secrets
import time

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from callbid.adapters.storage.tables import Company
from callbid.domain.errors import Unauthorized
from callbid.runtime import Runtime

#: A rotated token stops working everywhere within this many seconds.
TOKEN_CACHE_SECONDS = 5.0
TOKEN_CACHE_MAX = 10_000

bearer = HTTPBearer(auto_error=False, description="the company's admin token")


def new_token() -> str:
    return "cbk_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def company_id_for(runtime: Runtime, authorization: str | None) -> int:
    """The company whose token is in an `Authorization: Bearer` header; Unauthorized else."""
    if not authorization:
        raise Unauthorized("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected Authorization: Bearer <token>")
    return await _resolve(runtime, token.strip())


async def _resolve(runtime: Runtime, token: str) -> int:
    digest = hash_token(token)
    cached = runtime.token_cache.get(digest)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    async with runtime.sessions() as session:
        company_id = await session.scalar(select(Company.id).where(Company.token_hash == digest))
    if company_id is None:
        raise Unauthorized("unknown token")
    if len(runtime.token_cache) >= TOKEN_CACHE_MAX:
        runtime.token_cache.clear()
    runtime.token_cache[digest] = (company_id, time.monotonic() + TOKEN_CACHE_SECONDS)
    return company_id


async def current_company(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> int:
    """FastAPI dependency: the authenticated company's id."""
    if credentials is None:
        raise Unauthorized("missing bearer token")
    return await _resolve(runtime_of(request), credentials.credentials)
