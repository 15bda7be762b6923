"""`callbid user …`: add, list, disable, enable and reset the console's users."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callbid.adapters.storage.tables import User
from callbid.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user; prompts for or generates a password")
    add.add_argument("--company", type=int, required=True, help="the company's id")
    add.add_argument("--email", required=True)
    add.add_argument("--role", choices=("admin", "viewer"), default="admin")
    listed = actions.add_parser("list", help="every user, as JSON lines")
    listed.add_argument("--company", type=int, help="only this company's")
    for name, what in (
        ("disable", "stop a user signing in (and sign it out everywhere)"),
        ("enable", "let a disabled user sign in again"),
        ("reset", "a new password (prompted for or generated); signs the user out everywhere"),
    ):
        actions.add_parser(name, help=what).add_argument("--email", required=True)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Prints each user touched as one JSON line, with the password when it generated one."""
    from callbid.adapters.storage.db import migrate
    from callbid.domain.errors import CallbidError
    from callbid.preflight import require_existing_database

    require_existing_database(settings)
    migrate(settings.database_url)
    try:
        return _act(settings, args)
    except CallbidError as exc:
        print(f"callbid: {exc.info}", file=sys.stderr)
        return 2


def _act(settings: Settings, args: argparse.Namespace) -> int:
    from callbid.service import users

    password, generated = None, False
    if args.action in ("add", "reset"):
        typed = _typed_password() if sys.stdin.isatty() else None
        password, generated = typed or users.new_password(), typed is None

    async def use(session: AsyncSession) -> list[User]:
        if args.action == "add":
            assert password is not None
            return [await users.add_user(session, args.company, args.email, password, args.role)]
        if args.action == "list":
            return list(await users.list_users(session, args.company))
        if args.action == "reset":
            assert password is not None
            return [await users.reset_password(session, args.email, password)]
        return [await users.set_disabled(session, args.email, args.action == "disable")]

    for user in asyncio.run(users.in_transaction(settings, use)):
        shown = _shown(user)
        if generated:
            shown["password"] = password
        print(json.dumps(shown))
    return 0


def _shown(user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "company_id": user.company_id,
        "email": user.email,
        "role": user.role,
        "disabled": user.disabled,
    }


def _typed_password() -> str | None:
    """A password typed twice at the terminal; None (generate one) when left empty."""
    import getpass

    while True:
        first = getpass.getpass("password (empty: generate one): ")
        if not first:
            return None
        if getpass.getpass("again: ") == first:
            return first
        print("the two passwords differ; try again", file=sys.stderr)
