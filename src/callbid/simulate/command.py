"""`callbid simulate` on the command line: its arguments, the credentials, output and exit
status (0 when every column matches, 1 when one does not, 2 when the run could not be made)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from callbid.settings import Settings

if TYPE_CHECKING:
    from callbid.simulate.run import Credentials

CREDENTIALS = ("key", "publisher_id", "admin_token", "carrier_token")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `simulate` subcommand's options."""
    parser.add_argument(
        "--url", help="the server's base URL (default: the local server, http://HOST:PORT)"
    )
    parser.add_argument(
        "--pings", type=_positive_int, default=200, help="pings to send (%(default)s)"
    )
    parser.add_argument(
        "--concurrency", type=_positive_int, default=10, help="requests at once (%(default)s)"
    )
    parser.add_argument(
        "--rate",
        type=_non_negative,
        default=100.0,
        help="pings per second, 0: no pacing (%(default)s)",
    )
    parser.add_argument(
        "--transfer-share",
        type=_share,
        default=0.7,
        help="reserved callers who call in (%(default)s)",
    )
    parser.add_argument(
        "--late-share",
        type=_share,
        default=0.1,
        help="calls placed after expires_at + 1 s (%(default)s)",
    )
    parser.add_argument(
        "--other-caller-share",
        type=_share,
        default=0.05,
        help="calls from another number (%(default)s)",
    )
    parser.add_argument(
        "--no-answer-share",
        type=_share,
        default=0.05,
        help="dialled legs that do not answer (%(default)s)",
    )
    parser.add_argument(
        "--talk-median",
        type=_positive,
        default=100.0,
        help="median talk seconds, log-normal (%(default)s)",
    )
    parser.add_argument(
        "--talk-sigma", type=_positive, default=0.6, help="log-normal sigma (%(default)s)"
    )
    parser.add_argument("--seed", type=int, help="replay the same traffic")
    parser.add_argument(
        "--settle",
        type=_non_negative,
        default=5.0,
        help="seconds to re-read a report that disagrees (%(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    for name in CREDENTIALS:
        parser.add_argument(
            f"--{name.replace('_', '-')}", help="default: the local demo's (`callbid demo --json`)"
        )


def command(settings: Settings, args: argparse.Namespace, default_url: str) -> int:
    """Run the simulation the arguments describe and print its table (or JSON line)."""
    from callbid.simulate.run import Options, SimulationError, simulate
    from callbid.simulate.traffic import Traffic

    if args.late_share + args.other_caller_share > 1:
        return _fail("--late-share and --other-caller-share add up to more than 1")
    try:
        credentials = _credentials(settings, args)
        options = Options(
            url=args.url or default_url,
            credentials=credentials,
            traffic=Traffic(
                pings=args.pings,
                transfer_share=args.transfer_share,
                late_share=args.late_share,
                other_caller_share=args.other_caller_share,
                no_answer_share=args.no_answer_share,
                talk_median=args.talk_median,
                talk_sigma=args.talk_sigma,
            ),
            concurrency=args.concurrency,
            rate=args.rate,
            seed=args.seed,
            settle=args.settle,
        )
        outcome = asyncio.run(simulate(options))
    except SimulationError as exc:
        return _fail(str(exc))
    print(json.dumps(outcome.as_json()) if args.json else outcome.as_text(), flush=True)
    return 0 if outcome.match else 1


def _credentials(settings: Settings, args: argparse.Namespace) -> Credentials:
    """The credentials given, the local demo's for those not given."""
    from callbid.simulate.run import Credentials, SimulationError

    given = {name: getattr(args, name) for name in CREDENTIALS}
    source = "from --carrier-token"
    if None in given.values():
        demo = asyncio.run(_local_demo(settings)) or {}
        demo["carrier_token"] = demo.get("carrier_auth_token")
        _refuse_mixed(given, demo)
        if given["carrier_token"] is None:
            source = f"of the local demo (in {_where(settings)})"
        given = {name: given[name] or demo.get(name) for name in CREDENTIALS}
    missing = [f"--{name.replace('_', '-')}" for name, value in given.items() if not value]
    if missing:
        raise SimulationError(
            f"no demo credentials in {_where(settings)} for {', '.join(missing)}: "
            "pass them, or run where `callbid serve` keeps its database"
        )
    return Credentials(**given, carrier_token_source=source)


def _refuse_mixed(given: dict[str, str | None], demo: dict[str, Any]) -> None:
    """Another company's key or token with the demo's carrier token would only sign every
    webhook wrongly (403s, then a mismatch): ask for that company's carrier token instead."""
    from callbid.simulate.run import SimulationError

    foreign = [
        f"--{name.replace('_', '-')}"
        for name in ("key", "admin_token")
        if given[name] is not None and given[name] != demo.get(name)
    ]
    if foreign and given["carrier_token"] is None:
        raise SimulationError(
            f"{' and '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not the local "
            "demo's: pass --carrier-token too (the Twilio auth token of the company that owns "
            "the key's tracking numbers)"
        )


def _where(settings: Settings) -> str:
    path = settings.sqlite_path
    return str(path.resolve()) if path is not None else "CALLBID_DATABASE_URL"


async def _local_demo(settings: Settings) -> dict[str, Any] | None:
    from sqlalchemy.exc import SQLAlchemyError

    from callbid.service.demo import seed_and_describe

    path = settings.sqlite_path
    if path is not None and not path.exists():
        return None  # connecting would create an empty database file
    try:
        return await seed_and_describe(settings, seed=False)
    except SQLAlchemyError:
        return None  # not a callbid database (yet)


def _fail(message: str) -> int:
    print(f"callbid simulate: {message}", file=sys.stderr)
    return 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value
