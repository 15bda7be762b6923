"""A reservation acknowledged before `kill -9` is still live after `callbid serve` restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callbid.adapters.storage.db import create_engine, migrate, session_factory
from callbid.settings import Settings
from tests.builders import Built, build_campaign

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`callbid serve` in a subprocess on a free port."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CALLBID_DATABASE_URL": database_url,
            "CALLBID_SEED_DEMO": "false",
        }
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "callbid.cli", "serve", "--port", str(self.port)]
        log = self.workdir / "server.log"
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/callbid.db"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    srv = Server(tmp_path, database_url)
    yield srv
    srv.stop()


def prepare(database_url: str) -> Built:
    migrate(database_url)
    return asyncio.run(_build(database_url))


async def _build(database_url: str) -> Built:
    engine = create_engine(Settings(database_url=database_url))
    try:
        return await build_campaign(
            session_factory(engine),
            targets=[{"concurrency_cap": 1}],
            key={"count_on_reserved": True, "ttl_seconds": 600},
        )
    finally:
        await engine.dispose()


def ping(server: Server, built: Built, caller: str) -> dict[str, object]:
    params = {"key": built.key, "publisher_id": "p", "caller_number": caller}
    response = httpx.post(f"{server.url}/rtbs.json", params=params, timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_kill_9_loses_no_acknowledged_reservation(server: Server, database_url: str) -> None:
    built = prepare(database_url)
    server.start()
    first = ping(server, built, "+12125550101")
    assert first["status"] == "reserved"
    server.kill()

    server.start()
    read = httpx.get(
        f"{server.url}/rtbs/{first['uuid']}.json", params={"key": built.key}, timeout=5
    )
    assert read.json() == first
    assert ping(server, built, "+12125550101") == {**first, "retreaver_ping_shield": True}
    assert ping(server, built, "+12125550102")["status"] == "no-target"
    wiped = httpx.delete(
        f"{server.url}/rtbs/{first['uuid']}.json", params={"key": built.key}, timeout=5
    )
    assert wiped.json()["status"] == "wiped"
    assert ping(server, built, "+12125550103")["status"] == "reserved"
