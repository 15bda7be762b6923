"""Console users: add them, check a sign-in (slowing repeated wrong passwords down), and keep
the signed-in sessions with their CSRF tokens."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callbid.adapters.storage import tables as t
from callbid.domain.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized
from callbid.logs import FIELDS
from callbid.settings import Settings

log = logging.getLogger("callbid.console")
T = TypeVar("T")

#: Wrong passwords allowed in a row before each further attempt must wait, doubling from 1 s.
FREE_ATTEMPTS = 5
MAX_WAIT_SECONDS = 900
MIN_PASSWORD_LENGTH = 10
SECRET_META_KEY = "console_secret"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHash((Argon2Hasher(),))
#: Verified against when the email is unknown, so that a miss costs what a hit costs.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a console request acts for: a signed-in user, or a script with the admin token
    (`user_id` None, no CSRF token needed since browsers never send the header by themselves)."""

    company_id: int
    role: Role
    user_id: int | None = None
    email: str | None = None
    csrf_token: str | None = None
    session_hash: str | None = None

    @property
    def can_change(self) -> bool:
        return self.role is Role.ADMIN


def new_password() -> str:
    return secrets.token_urlsafe(12)


def normalize_email(email: str) -> str:
    """The email as stored (trimmed, lower-cased); InvalidInput when it is not an address."""
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput(f"email: {email!r} is not an email address")
    return email


async def add_user(
    session: AsyncSession, company_id: int, email: str, password: str, role: str = Role.ADMIN
) -> t.User:
    """A new user of `company_id`; InvalidInput for a bad email, role or short password,
    NotFound for an unknown company, Conflict when the email is taken."""
    email = normalize_email(email)
    if role not in Role.__members__.values():
        raise InvalidInput(f"role: must be one of {', '.join(Role)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if await session.get(t.Company, company_id) is None:
        raise NotFound(f"company {company_id} not found")
    if await session.scalar(select(t.User.id).where(t.User.email == email)) is not None:
        raise Conflict(f"email: {email} is already a user")
    digest = await asyncio.to_thread(_hasher.hash, password)
    user = t.User(company_id=company_id, email=email, password_hash=digest, role=role)
    session.add(user)
    await session.flush()
    return user


async def sign_in(
    sessions: async_sessionmaker[AsyncSession],
    email: str,
    password: str,
    *,
    client: str,
    now: datetime,
) -> t.User:
    """The user whose email and password these are. Unauthorized when they are wrong (or the
    user is disabled); RateLimited, with the wait, while the email or the client address has
    failed `FREE_ATTEMPTS` times in a row and its wait has not passed. A failure is logged
    with the email and client, never the password."""
    email = email.strip().lower()
    keys = (f"email:{email}"[:300], f"client:{client}"[:300])
    async with sessions.begin() as session:
        await _refuse_while_throttled(session, keys, now)
        user = await session.scalar(select(t.User).where(t.User.email == email))
    stored = user.password_hash if user is not None else _UNKNOWN_USER_HASH
    valid, rehashed = await asyncio.to_thread(_hasher.verify_and_update, password, stored)
    if user is None or user.disabled or not valid:
        async with sessions.begin() as session:
            failures = await _count_failure(session, keys, now)
        fields = {"email": email, "client": client, "failures": failures}
        log.warning("console.sign_in_failed", extra={FIELDS: fields})
        raise Unauthorized("wrong email or password")
    async with sessions.begin() as session:
        await session.execute(delete(t.LoginFailure).where(t.LoginFailure.key.in_(keys)))
        stored_user = await session.get(t.User, user.id)
        assert stored_user is not None
        stored_user.last_login_at = now
        if rehashed is not None:
            stored_user.password_hash = rehashed
    return user


def wait_after(failures: int) -> float:
    """Seconds a further attempt must wait after `failures` wrong passwords in a row."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    return float(min(2 ** (failures - FREE_ATTEMPTS), MAX_WAIT_SECONDS))


async def _refuse_while_throttled(
    session: AsyncSession, keys: tuple[str, ...], now: datetime
) -> None:
    rows = await session.scalars(select(t.LoginFailure).where(t.LoginFailure.key.in_(keys)))
    for row in rows:
        left = (row.last_at + timedelta(seconds=wait_after(row.count)) - now).total_seconds()
        if left > 0:
            raise RateLimited(
                f"too many wrong passwords; try again in {int(left) + 1} s", retry_after=left
            )


async def _count_failure(session: AsyncSession, keys: tuple[str, ...], now: datetime) -> int:
    counts = []
    for key in keys:
        row = await session.get(t.LoginFailure, key)
        if row is None:
            row = t.LoginFailure(key=key, count=0, last_at=now)
            session.add(row)
        row.count += 1
        row.last_at = now
        counts.append(row.count)
    return max(counts)


def _hash_session(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(
    sessions: async_sessionmaker[AsyncSession], user: t.User, *, now: datetime, hours: float
) -> str:
    """A new signed-in session of `user`; returns its id (kept only hashed)."""
    session_id = secrets.token_urlsafe(32)
    async with sessions.begin() as session:
        session.add(
            t.ConsoleSession(
                id_hash=_hash_session(session_id),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
    return session_id


async def principal_of_session(
    sessions: async_sessionmaker[AsyncSession], session_id: str, now: datetime
) -> Principal | None:
    """Who the session is signed in as; None when it is unknown, expired or its user disabled."""
    digest = _hash_session(session_id)
    query = (
        select(t.ConsoleSession, t.User)
        .join(t.User, t.User.id == t.ConsoleSession.user_id)
        .where(t.ConsoleSession.id_hash == digest)
    )
    async with sessions() as session:
        found = (await session.execute(query)).first()
    if found is None:
        return None
    stored, user = found
    if stored.expires_at <= now or user.disabled:
        return None
    return Principal(
        company_id=user.company_id,
        role=Role(user.role),
        user_id=user.id,
        email=user.email,
        csrf_token=stored.csrf_token,
        session_hash=digest,
    )


async def close_session(sessions: async_sessionmaker[AsyncSession], session_hash: str) -> None:
    async with sessions.begin() as session:
        await session.execute(
            delete(t.ConsoleSession).where(t.ConsoleSession.id_hash == session_hash)
        )


async def purge_sessions(session: AsyncSession, now: datetime) -> None:
    """Forget expired sessions and login failures whose wait is long over."""
    await session.execute(delete(t.ConsoleSession).where(t.ConsoleSession.expires_at <= now))
    stale = now - timedelta(seconds=2 * MAX_WAIT_SECONDS)
    await session.execute(delete(t.LoginFailure).where(t.LoginFailure.last_at < stale))


async def console_secret(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> str:
    """`CALLBID_SECRET_KEY`, or the key generated once and kept in the database, so that every
    worker signs and checks the same cookies."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    async with sessions() as session:
        row = await session.get(t.Meta, SECRET_META_KEY)
    if row is not None:
        return row.value
    try:
        async with sessions.begin() as session:
            session.add(t.Meta(key=SECRET_META_KEY, value=secrets.token_urlsafe(48)))
    except IntegrityError:  # another worker wrote it first
        pass
    async with sessions() as session:
        row = await session.get(t.Meta, SECRET_META_KEY)
    assert row is not None
    return row.value


async def list_users(session: AsyncSession, company_id: int | None = None) -> Sequence[t.User]:
    """Every user (of `company_id` when given), by company then email."""
    query = select(t.User).order_by(t.User.company_id, t.User.email)
    if company_id is not None:
        query = query.where(t.User.company_id == company_id)
    return (await session.scalars(query)).all()


async def _user_by_email(session: AsyncSession, email: str) -> t.User:
    user = await session.scalar(select(t.User).where(t.User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"email: no user {email.strip().lower()}")
    return user


async def set_disabled(session: AsyncSession, email: str, disabled: bool) -> t.User:
    """Disable (signed out everywhere at once) or enable the user; NotFound for no such user."""
    user = await _user_by_email(session, email)
    user.disabled = disabled
    if disabled:
        await session.execute(delete(t.ConsoleSession).where(t.ConsoleSession.user_id == user.id))
    return user


async def reset_password(session: AsyncSession, email: str, password: str) -> t.User:
    """A new password for the user, its sessions ended and its wrong-password count cleared;
    InvalidInput for a short password, NotFound for no such user."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    user = await _user_by_email(session, email)
    user.password_hash = await asyncio.to_thread(_hasher.hash, password)
    await session.execute(delete(t.ConsoleSession).where(t.ConsoleSession.user_id == user.id))
    await session.execute(delete(t.LoginFailure).where(t.LoginFailure.key == f"email:{user.email}"))
    return user


async def in_transaction(settings: Settings, use: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`use` run in one transaction on a short-lived engine, for the command line."""
    from callbid.adapters.storage.db import create_engine, session_factory

    engine = create_engine(settings)
    try:
        async with session_factory(engine).begin() as session:
            return await use(session)
    finally:
        await engine.dispose()
