"""The `callbid` command: serve, demo, company and user management, purge, simulate."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from callbid.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        print(f"callbid: invalid settings: {_settings_problems(exc)}", file=sys.stderr)
        return 2
    handler = {
        "serve": _serve,
        "demo": _demo,
        "company": _company,
        "user": _user,
        "purge": _purge,
        "simulate": _simulate,
    }[args.command]
    from callbid.preflight import Refused, explain_database_error

    try:
        return handler(settings, args)
    except Refused as exc:
        print(f"callbid: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        line = explain_database_error(exc, settings)
        if line is None:
            raise
        print(f"callbid: {line}", file=sys.stderr)
        return 2


def _settings_problems(exc: ValidationError) -> str:
    """Each problem after the variable it is about (`CALLBID_PORT=abc: …`); a value is shown
    unless it may hold a secret (URLs carry passwords)."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:
            problems.append(message)
            continue
        name = str(error["loc"][0])
        variable = f"CALLBID_{name.upper()}"
        value = error.get("input")
        if isinstance(value, str | int | float) and not name.endswith("_url"):
            variable += f"={value}"
        problems.append(f"{variable}: {message}")
    return "; ".join(problems)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callbid", description=__doc__)
    parser.add_argument("--database-url", help="overrides CALLBID_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (migrates, seeds the demo)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers", type=int, help="worker processes on one port (needs PostgreSQL and Redis)"
    )
    demo = sub.add_parser("demo", help="print the demo campaign's ping URL and credentials")
    demo.add_argument("--json", action="store_true", help="one JSON line")
    company = sub.add_parser("company", help="create a company and print its admin token")
    company.add_argument("name")
    from callbid.cli_users import add_arguments as user_arguments

    user_arguments(sub.add_parser("user", help="manage console users"))
    sub.add_parser("purge", help="delete RTB records older than the retention period")
    from callbid.simulate.command import add_arguments

    add_arguments(sub.add_parser("simulate", help="drive a server with traffic, check its report"))
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        name: value
        for name in ("database_url", "host", "port", "workers")
        if (value := getattr(args, name, None)) is not None
    }


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(**_overrides(args))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from callbid.adapters.storage.db import migrate
    from callbid.api.app import create_app
    from callbid.logs import configure_logging
    from callbid.preflight import require_creatable_database, require_free_port
    from callbid.service.demo import seed_and_describe

    configure_logging(settings)
    require_creatable_database(settings)
    require_free_port(settings.host, settings.port)
    migrate(settings.database_url)
    url = _served_url(settings)
    demo = asyncio.run(seed_and_describe(settings, serving_at=url))
    print(_banner(url, demo is not None), flush=True)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # callbid's own set-up (`configure_logging`) formats uvicorn's records too; every
        # request is logged as an event by the publisher and carrier endpoints instead.
        "log_config": None,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings, migrate_schema=False), **options)
        return 0
    # Worker processes build their settings from the environment: hand them the command
    # line's overrides, and leave migrating and seeding (done above, once) to this process.
    os.environ.update(
        {f"CALLBID_{name.upper()}": str(value) for name, value in _overrides(args).items()}
    )
    os.environ["CALLBID_SEED_DEMO"] = "false"
    from callbid.supervisor import Supervisor

    return Supervisor(settings.workers, options).run()


def _served_url(settings: Settings) -> str:
    """The base URL clients reach this server on: `CALLBID_PUBLIC_URL`, else where it listens."""
    if settings.public_url is not None:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}"


def _recorded_url(settings: Settings) -> str:
    """`CALLBID_PUBLIC_URL`, else where `callbid serve` last listened on this database, else
    where it would listen with these settings."""
    from sqlalchemy.exc import SQLAlchemyError

    from callbid.service.demo import describe_served_url

    path = settings.sqlite_path
    if settings.public_url is not None or (path is not None and not path.exists()):
        return _served_url(settings)  # opening a missing SQLite file would create it
    try:
        return asyncio.run(describe_served_url(settings)) or _served_url(settings)
    except SQLAlchemyError:
        return _served_url(settings)  # not a callbid database (yet)


def _banner(url: str, demo: bool) -> str:
    """What `serve` prints: where it serves, never a secret (the banner ends up in logs)."""
    lines = [f"callbid serving on {url} (API docs: {url}/docs)"]
    if demo:
        lines.append(
            "demo campaign ready: `callbid demo` prints its ping and the owner look-up "
            "(`callbid demo --json` its RTB key and admin token)"
        )
        lines.append(f"owner console: {url}/console (`callbid demo` prints its sign-in)")
    return "\n".join(lines)


def _curl(url: str, demo: dict[str, str]) -> str:
    return (
        "callbid demo ping:\n"
        f"  curl -s -X POST '{url}/rtbs.json?key={demo['key']}"
        f"&publisher_id={demo['publisher_id']}&caller_number=%2B12125550123&caller_zip=10001'\n"
        f"owner look-up: curl -s -H 'Authorization: Bearer {demo['admin_token']}' "
        f"{url}/call_reservations/<uuid>\n"
        f"owner console: {url}/console  email: {demo['email']}  password: {demo['password']}\n"
        f"admin API docs: {url}/docs"
    )


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from callbid.adapters.storage.db import migrate
    from callbid.preflight import require_existing_database
    from callbid.service.demo import seed_and_describe

    require_existing_database(settings)
    migrate(settings.database_url)
    demo = asyncio.run(seed_and_describe(settings, seed=True))
    if demo is None:
        print("callbid: this database holds no demo company", file=sys.stderr)
        return 1
    url = _recorded_url(settings)
    described = {"rtb_url": f"{url}/rtbs.json", "console_url": f"{url}/console", **demo}
    print(json.dumps(described) if args.json else _curl(url, demo))
    return 0


def _company(settings: Settings, args: argparse.Namespace) -> int:
    from callbid.adapters.storage.db import migrate
    from callbid.preflight import require_existing_database
    from callbid.service.companies import create_company_once

    require_existing_database(settings)
    migrate(settings.database_url)
    company_id, token = asyncio.run(create_company_once(settings, args.name))
    print(json.dumps({"company_id": company_id, "admin_token": token}))
    return 0


def _user(settings: Settings, args: argparse.Namespace) -> int:
    from callbid.cli_users import run

    return run(settings, args)


def _purge(settings: Settings, _args: argparse.Namespace) -> int:
    from callbid.preflight import require_existing_database
    from callbid.service.maintenance import purge_database

    require_existing_database(settings)
    deleted = asyncio.run(purge_database(settings))
    print(json.dumps({"deleted": deleted}))
    return 0


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from callbid.simulate.command import command

    return command(settings, args, args.url or _recorded_url(settings))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
