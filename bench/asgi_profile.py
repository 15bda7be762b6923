"""Per-request cost of GET /healthz and POST /rtbs.json through the whole ASGI app, in process.

No server and no network: requests are handed to the app as ASGI calls, 64 at a time, on a
fresh SQLite database with the demo company. Prints wall and CPU microseconds per request
(CPU counts every thread, so the SQLite writer's share is in it). With a pstats sort key
(`python bench/asgi_profile.py cumulative`, or `tottime`, `ncalls`) it then profiles the pings;
cProfile inflates call-heavy code about 2.5x, so read that profile relatively.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

from callbid.api.app import create_app
from callbid.service.demo import demo_credentials
from callbid.settings import Settings

REQUESTS = 6400
CONCURRENCY = 64
PROFILE_LINES = 45
#: Caller numbers +1 212 2xx xxxx: valid, and fresh for every ping of a run.
FIRST_CALLER = 2_000_000

Message = dict[str, Any]
Request = Callable[[int], Awaitable[list[Message]]]


async def call(app: FastAPI, method: str, path: str, body: bytes = b"") -> list[Message]:
    """One request through the ASGI app; the messages it sent back."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return sent


async def run(label: str, request: Request) -> None:
    """REQUESTS requests, CONCURRENCY at a time; prints the cost of one."""
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, REQUESTS, CONCURRENCY):
        await asyncio.gather(*(request(start + k) for k in range(CONCURRENCY)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    per_wall, per_cpu = wall / REQUESTS * 1e6, cpu / REQUESTS * 1e6
    print(f"{label:9} {per_wall:7.1f} us wall {per_cpu:7.1f} us cpu")


async def main(sort_key: str | None) -> None:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"))
    async with app.router.lifespan_context(app):
        demo = await demo_credentials(app.state.runtime.sessions)
        if demo is None:
            raise SystemExit("the demo company was not seeded")
        prefix = f"key={demo['key']}&publisher_id=demo-pub&caller_zip=10001&caller_number=%2B1212"

        def ping_from(first: int) -> Request:
            def ping(i: int) -> Awaitable[list[Message]]:
                return call(app, "POST", "/rtbs.json", f"{prefix}{first + i:07d}".encode())

            return ping

        def healthz(_i: int) -> Awaitable[list[Message]]:
            return call(app, "GET", "/healthz")

        await run("healthz", healthz)
        await run("ping", ping_from(FIRST_CALLER))
        await run("healthz", healthz)
        answer = await ping_from(FIRST_CALLER + 2 * REQUESTS)(0)
        print(answer[1]["body"].decode())
        if sort_key is not None:
            profile = cProfile.Profile()
            profile.enable()
            await run("ping-prof", ping_from(FIRST_CALLER + REQUESTS))
            profile.disable()
            pstats.Stats(profile).sort_stats(sort_key).print_stats(PROFILE_LINES)


def _sort_key(argv: list[str]) -> str | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sort_key",
        nargs="?",
        choices=["cumulative", "tottime", "ncalls", "calls", "time"],
        help="profile the pings and sort the profile by this key",
    )
    key: str | None = parser.parse_args(argv).sort_key
    return key


if __name__ == "__main__":
    asyncio.run(main(_sort_key(sys.argv[1:])))
