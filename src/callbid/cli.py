"""The `callbid` command: serve, demo, company management, purge, simulate."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        print(f"callbid: invalid settings: {problems}", file=sys.stderr)
        return 2
    handler = {
        "serve": _serve,
        "demo": _demo,
        "company": _company,
        "purge": _purge,
        "simulate": _simulate,
    }[args.command]
    return handler(settings, args)


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
    from callbid.service.demo import seed_and_describe

    migrate(settings.database_url)
    demo = asyncio.run(seed_and_describe(settings))
    if demo is not None:
        print(_curl(settings, demo), flush=True)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
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

    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)-9s %(message)s")
    return Supervisor(settings.workers, options).run()


def _public_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def _curl(settings: Settings, demo: dict[str, str]) -> str:
    url = _public_url(settings)
    return (
        "callbid demo ping:\n"
        f"  curl -s -X POST '{url}/rtbs.json?key={demo['key']}"
        f"&publisher_id={demo['publisher_id']}&caller_number=%2B12125550123&caller_zip=10001'\n"
        f"owner look-up: curl -s -H 'Authorization: Bearer {demo['admin_token']}' "
        f"{url}/call_reservations/<uuid>\n"
        f"admin API docs: {url}/docs"
    )


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from callbid.adapters.storage.db import migrate
    from callbid.service.demo import seed_and_describe

    migrate(settings.database_url)
    demo = asyncio.run(seed_and_describe(settings, seed=True))
    if demo is None:
        print("callbid: this database holds no demo company", file=sys.stderr)
        return 1
    described = {"rtb_url": f"{_public_url(settings)}/rtbs.json", **demo}
    print(json.dumps(described) if args.json else _curl(settings, demo))
    return 0


def _company(settings: Settings, args: argparse.Namespace) -> int:
    from callbid.adapters.storage.db import migrate
    from callbid.service.companies import create_company_once

    migrate(settings.database_url)
    company_id, token = asyncio.run(create_company_once(settings, args.name))
    print(json.dumps({"company_id": company_id, "admin_token": token}))
    return 0


def _purge(settings: Settings, _args: argparse.Namespace) -> int:
    from callbid.service.maintenance import purge_database

    deleted = asyncio.run(purge_database(settings))
    print(json.dumps({"deleted": deleted}))
    return 0


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from callbid.simulate.command import command

    return command(settings, args, _public_url(settings))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
