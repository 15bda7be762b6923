"""Several workers on PostgreSQL and Redis: configuration changes reach every worker, Redis
going away answers 503 and recovers, and real worker processes never over-book a cap."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from random import Random
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy.engine import make_url

from callbid.api.app import create_app
from callbid.cli import main as cli_main
from callbid.domain.errors import Unavailable
from callbid.domain.reserve import namespace
from callbid.service import maintenance
from callbid.settings import Settings
from tests.builders import Built, build_campaign
from tests.conftest import (
    E2E_REDIS_URL,
    POSTGRES_URL,
    FakeClock,
    Service,
    reset_postgres,
    reset_redis,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def second_worker(settings: Settings, clock: FakeClock) -> AsyncIterator[Service]:
    """Another app on the same PostgreSQL and Redis, as a second worker process would be."""
    app = create_app(settings, clock=clock, rng=Random(11))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://w2.test") as client:
            yield Service(app, client, clock, settings)


async def ping(svc: Service, built: Built, caller: str, key: str | None = None) -> httpx.Response:
    params = {"key": key or built.key, "publisher_id": "pub-1", "caller_number": caller}
    return await svc.client.post("/rtbs.json", params=params)


async def eventually(
    check: Callable[[], Any], *, within: float, every: float = 0.02
) -> tuple[Any, float]:
    """Poll the async `check` until it returns a truthy value; (value, seconds it took)."""
    started = time.monotonic()
    while True:
        value = await check()
        elapsed = time.monotonic() - started
        if value or elapsed > within:
            return value, elapsed
        await asyncio.sleep(every)


# ---------------------------------------------------------------- configuration changes


async def pause_reaches_second_worker(one: Service, two: Service, built: Built) -> dict[str, str]:
    """The second worker reserves on the campaign's key, the first pauses it, and the second
    refuses the key within a second (the configuration bus); the owner's auth header."""
    assert two.runtime.bus is not None
    await asyncio.wait_for(two.runtime.bus.subscribed.wait(), 5)
    assert (await ping(two, built, "+12125550001")).json()["status"] == "reserved"
    auth = {"Authorization": f"Bearer {built.token}"}
    paused = await one.client.patch(
        f"/api/v1/rtb-keys/{built.key}", json={"paused": True}, headers=auth
    )
    assert paused.status_code == 200, paused.text

    async def refused() -> bool:
        return (await ping(two, built, "+12125550002")).status_code == 403

    seen, took = await eventually(refused, within=1.0)
    assert seen, f"the second worker still serves the paused key after {took:.2f} s"
    return auth


async def test_an_admin_change_reaches_every_worker_within_a_second(
    make_service: Callable[..., Any], clock: FakeClock
) -> None:
    async with make_service("postgres") as one:
        built = await build_campaign(one.runtime.sessions)
        async with second_worker(one.settings, clock) as two:
            auth = await pause_reaches_second_worker(one, two, built)

            # A key the second worker has refused (and remembers as unknown) for a while.
            created = await one.client.post(
                "/api/v1/rtb-keys", json={"campaign_id": built.campaign_id}, headers=auth
            )
            new_key = created.json()["key"]

            async def accepted() -> bool:
                answer = await ping(two, built, "+12125550003", key=new_key)
                return answer.status_code == 200

            seen, took = await eventually(accepted, within=1.0)
            assert seen, f"the second worker does not know the new key after {took:.2f} s"


async def test_a_worker_that_lost_redis_drops_its_whole_cache_on_reconnect(
    make_service: Callable[..., Any],
) -> None:
    async with make_service("postgres") as svc:
        built = await build_campaign(svc.runtime.sessions)
        bus = svc.runtime.bus
        assert bus is not None
        await asyncio.wait_for(bus.subscribed.wait(), 5)
        assert (await ping(svc, built, "+12125550001")).status_code == 200
        assert svc.runtime.configs._keys  # warm
        killer = Redis.from_url(svc.settings.redis_url or "")
        try:
            killer.client_kill_filter(_type="pubsub")
        finally:
            killer.close()

        async def resubscribed_and_cold() -> bool:
            return bus.subscribed.is_set() and not svc.runtime.configs._keys

        done, _ = await eventually(resubscribed_and_cold, within=5.0)
        assert done


# ---------------------------------------------------------------- Redis going away


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedis:
    """A redis-server of the test's own, with its append-only file in `workdir`."""

    def __init__(self, workdir: Path, *, aof: bool) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else []
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.proc = subprocess.Popen(
            [binary, *options, "--dir", str(self.workdir), *persistence],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = Redis(port=self.port, socket_timeout=0.2)
                if client.ping():
                    client.close()
                    return
            except OSError:
                pass
            except Exception:  # redis ConnectionError / BusyLoadingError while it starts
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def running_redis(tmp_path: Path, *, aof: bool) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path, aof=aof)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server with an append-only file synced on every write."""
    yield from running_redis(tmp_path, aof=True)


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server that keeps nothing on disk, like the one on this machine."""
    yield from running_redis(tmp_path, aof=False)


async def test_redis_down_answers_503_then_recovers_and_keeps_reservations(
    make_service: Callable[..., Any], own_redis: OwnRedis
) -> None:
    async with make_service("postgres", redis_url=own_redis.url) as svc:
        built = await build_campaign(
            svc.runtime.sessions,
            targets=[{"concurrency_cap": 1}],
            key={"count_on_reserved": True, "ttl_seconds": 300},
        )
        first = (await ping(svc, built, "+12125550001")).json()
        assert first["status"] == "reserved"

        own_redis.kill()
        started = time.monotonic()
        down = await ping(svc, built, "+12125550002")
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] == "1"
        assert down.json() == {
            "status": "failed",
            "info": "FAILED hot state unavailable, retry shortly",
        }
        assert time.monotonic() - started < 3.0, "a down Redis must not stall the ping"

        own_redis.start()  # same port, same append-only file

        async def answered() -> httpx.Response | None:
            response = await ping(svc, built, "+12125550003")
            return response if response.status_code == 200 else None

        back, _ = await eventually(answered, within=10.0, every=0.1)
        assert back is not None, "pings did not recover after Redis came back"
        # The acknowledged reservation survived in the append-only file: it still holds the
        # buyer's only slot, so the new caller finds no room.
        assert back.json()["status"] == "no-target"
        live = await svc.runtime.store.get(
            namespace(built.company_id), first["uuid"], svc.clock().timestamp()
        )
        assert live is not None


async def test_a_redis_that_lost_its_data_gets_the_live_reservations_back(
    make_service: Callable[..., Any], volatile_redis: OwnRedis
) -> None:
    async with make_service("postgres", redis_url=volatile_redis.url) as svc:
        bus = svc.runtime.bus
        assert bus is not None
        await asyncio.wait_for(bus.subscribed.wait(), 5)
        built = await build_campaign(
            svc.runtime.sessions,
            targets=[{"concurrency_cap": 1}],
            key={"count_on_reserved": True, "ttl_seconds": 300},
        )
        first = (await ping(svc, built, "+12125550001")).json()
        assert first["status"] == "reserved"

        volatile_redis.kill()
        volatile_redis.start()  # empty
        store, ns = svc.runtime.store, namespace(built.company_id)

        async def restored() -> Any:
            with contextlib.suppress(Unavailable):
                return await store.get(ns, first["uuid"], svc.clock().timestamp())
            return None

        live, _ = await eventually(restored, within=10.0, every=0.1)
        assert live is not None, "the live reservation was not put back into Redis"
        assert live.target_id == built.target_ids[0]
        again = await ping(svc, built, "+12125550001")  # the ping shield is back too
        assert again.json()["uuid"] == first["uuid"]
        other = await ping(svc, built, "+12125550002")  # and the buyer's only slot
        assert other.json()["status"] == "no-target"


async def test_a_flushed_redis_is_refilled_by_the_periodic_check(
    make_service: Callable[..., Any], volatile_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data lost while the bus stays subscribed (a flush here; on a cluster, a master other
    than the bus's coming back empty): the restore check notices the missing mark."""
    monkeypatch.setattr(maintenance, "RESTORE_CHECK_SECONDS", 0.2)
    async with make_service("postgres", redis_url=volatile_redis.url) as svc:
        bus = svc.runtime.bus
        assert bus is not None
        await asyncio.wait_for(bus.subscribed.wait(), 5)
        built = await build_campaign(svc.runtime.sessions, key={"ttl_seconds": 300})
        first = (await ping(svc, built, "+12125550001")).json()
        assert first["status"] == "reserved"
        store, ns = svc.runtime.store, namespace(built.company_id)
        with Redis.from_url(volatile_redis.url) as redis:
            redis.flushall()
        assert await store.get(ns, first["uuid"], svc.clock().timestamp()) is None

        async def restored() -> Any:
            return await store.get(ns, first["uuid"], svc.clock().timestamp())

        live, _ = await eventually(restored, within=5.0, every=0.1)
        assert live is not None, "the live reservation was not put back into Redis"
        assert bus.subscribed.is_set()  # no resubscription did it


async def test_pings_during_a_redis_restart_get_200_or_503_never_500(
    make_service: Callable[..., Any], own_redis: OwnRedis
) -> None:
    async with make_service("postgres", redis_url=own_redis.url) as svc:
        built = await build_campaign(svc.runtime.sessions)
        codes: Counter[int] = Counter()
        stop = asyncio.Event()

        async def load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                response = await ping(svc, built, f"+1212{200 + worker:03d}{n % 10_000:04d}")
                codes[response.status_code] += 1
                if response.status_code == 503:
                    assert "Retry-After" in response.headers
                # A refused localhost connect may never suspend: let the test's timer run.
                await asyncio.sleep(0.001)

        tasks = [asyncio.create_task(load(w)) for w in range(8)]
        await asyncio.sleep(0.3)
        own_redis.kill()
        await asyncio.sleep(0.5)
        own_redis.start()
        await asyncio.sleep(1.5)
        before = codes[200]
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        assert set(codes) <= {200, 503}, codes
        assert codes[503] > 0, "the outage was not noticed"
        assert codes[200] > before, "pings did not recover"


# ---------------------------------------------------------------- worker processes


def test_race_of_worker_processes_grants_exactly_the_cap() -> None:
    race = [str(REPO / "bench" / "race.py"), "--workers", "2", "--pings", "300", "--cap", "5"]
    done = subprocess.run(
        [sys.executable, *race, "--json-only"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["granted"], result["stored"], result["errors"]) == (5, 5, 0), result
    assert result["no_target"] == 295
    assert done.returncode == 0, done.stderr


def test_several_workers_need_postgres_and_redis(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CALLBID_DATABASE_URL", "CALLBID_REDIS_URL", "CALLBID_STORE"):
        monkeypatch.delenv(name, raising=False)
    assert cli_main(["serve", "--workers", "2"]) == 2
    message = capsys.readouterr().err.strip()
    assert message == (
        "callbid: invalid settings: several workers share hot state: set CALLBID_REDIS_URL; "
        "several workers share one database: set CALLBID_DATABASE_URL to PostgreSQL"
    )


# ---------------------------------------------------------------- PostgreSQL going away


class CuttableProxy:
    """A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones
    refused) and restored on the same port: the database going away, as the app sees it."""

    def __init__(self, upstream_port: int = 5432) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_postgres_down_answers_503_frees_the_slot_and_recovers(
    make_service: Callable[..., Any],
) -> None:
    # The tests' own database (CALLBID_TEST_POSTGRES_URL), reached through the proxy.
    real = make_url(POSTGRES_URL)
    proxy = CuttableProxy(real.port or 5432)
    await proxy.start()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    async with make_service("postgres", database_url=url, database_timeout_seconds=1) as svc:
        built = await build_campaign(
            svc.runtime.sessions,
            targets=[{"concurrency_cap": 2}],
            key={"count_on_reserved": True, "ttl_seconds": 300},
        )
        assert (await ping(svc, built, "+12125550001")).json()["status"] == "reserved"

        await proxy.cut()
        started = time.monotonic()
        down = await ping(svc, built, "+12125550002")
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] == "1"
        assert time.monotonic() - started < 5.0, "a down database must not stall the ping"

        await proxy.start()

        async def answered() -> httpx.Response | None:
            response = await ping(svc, built, "+12125550003")
            return response if response.status_code == 200 else None

        back, _ = await eventually(answered, within=10.0, every=0.1)
        assert back is not None, "pings did not recover after PostgreSQL came back"
        # The ping that could not be recorded gave its slot back: the second slot is free.
        assert back.json()["status"] == "reserved"
        assert (await ping(svc, built, "+12125550004")).json()["status"] == "no-target"


# ---------------------------------------------------------------- the supervisor


def healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def worker_pids(parent: int) -> set[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    found = set()
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(int(pid))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def served_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`callbid serve --workers 2` on the test PostgreSQL and Redis, up with both workers;
    killed, with whatever workers are left, on exit."""
    asyncio.run(reset_postgres(POSTGRES_URL))
    asyncio.run(reset_redis(E2E_REDIS_URL))
    port = free_port()
    env = {
        **os.environ,
        "CALLBID_DATABASE_URL": POSTGRES_URL,
        "CALLBID_REDIS_URL": E2E_REDIS_URL,
        "CALLBID_STORE": "redis",
    }
    serve = [sys.executable, "-m", "callbid.cli", "serve", "--port", str(port), "--workers", "2"]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(serve, env=env, cwd=tmp_path, stdout=log, stderr=log)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while not (healthz(port) and len(workers := worker_pids(server.pid)) == 2):
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        yield server, port, log_path
    finally:
        if server.poll() is None:
            workers |= worker_pids(server.pid)
            server.kill()
            server.wait()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_serve_restarts_a_worker_that_died_and_stops_them_all(tmp_path: Path) -> None:
    with served_workers(tmp_path) as (server, port, log_path):
        victim = min(worker_pids(server.pid))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            now = worker_pids(server.pid)
            if len(now) == 2 and victim not in now and healthz(port):
                break
            assert time.monotonic() < deadline, f"worker not replaced: {now}"
            time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0, log_path.read_text()
        assert not any(alive(pid) for pid in now)
        assert "exited (-9)" in log_path.read_text()


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    with served_workers(tmp_path) as (server, _port, _log):
        workers = worker_pids(server.pid)
        server.kill()
        server.wait()
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.2)
