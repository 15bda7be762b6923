"""`callbid simulate` against `callbid serve` on the demo data: its totals are the server's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

CALLBID = [sys.executable, "-m", "callbid.cli"]


@dataclass
class Served:
    url: str
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> str:
        """Stop the server (as SIGTERM does in production) and return its whole log."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        return (self.workdir / "server.log").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`callbid serve` on a free port, its SQLite database (with the demo) in `tmp_path`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CALLBID_")}
    env["CALLBID_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/callbid.db"
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*CALLBID, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _healthy(url):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.1)
        yield Served(url, env, tmp_path, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


def callbid(served: Served, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CALLBID, *args],
        cwd=served.workdir,
        env=served.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_simulate_against_serve_matches_the_servers_report(served: Served) -> None:
    demo = last_json(callbid(served, "demo", "--json"))
    shortened = httpx.patch(
        f"{served.url}/api/v1/rtb-keys/{demo['key']}",
        json={"ttl_seconds": 3},
        headers={"Authorization": f"Bearer {demo['admin_token']}"},
    )
    assert shortened.status_code == 200, shortened.text

    # Credentials from the demo database in the working directory, as a user would run it;
    # seed 8 draws 19 calls in time, 5 late and 3 from another number.
    done = callbid(
        served, "simulate", "--url", served.url, "--pings", "40", "--seed", "8", "--json"
    )

    assert done.returncode == 0, done.stdout + done.stderr
    result = last_json(done)
    assert result["match"] is True, result
    assert "errors" not in result
    server = result["server"]
    assert {k: server[k] for k in ("pings", "reserved", "calls")} == {
        k: result[k] for k in ("pings", "reserved", "calls")
    }
    assert result["pings"] == result["reserved"] == 40  # the demo's call center never closes
    # About 27 (the seed's draw); one run in several placed one more, which the server
    # counted alike (the match above).
    assert 24 <= result["calls"] <= 30
    assert 0 < result["claimed"] <= 19  # fewer if an on-time call had to be placed late
    assert result["expired"] == result["reserved"] - result["claimed"]
    assert server["wiped"] == server["confirmed"] == 0
    assert 0 < result["conversions"] <= result["claimed"]
    assert result["payout"] == 12.5 * result["conversions"]  # the demo's criterion
    assert result["revenue"] == 25.0 * result["conversions"]
    assert server["profit"] == result["revenue"] - result["payout"]


def test_demo_gives_the_url_serve_listens_on_and_the_banner_no_secret(
    served: Served, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = Served(served.url, served.env, tmp_path_factory.mktemp("elsewhere"))
    demo = last_json(callbid(elsewhere, "demo", "--json"))
    # `serve --port N` on a database the environment names: N, not the default 8000.
    assert demo["rtb_url"] == f"{served.url}/rtbs.json"
    answer = httpx.post(
        demo["rtb_url"],
        data={
            "key": demo["key"],
            "publisher_id": demo["publisher_id"],
            "caller_number": "+12125550142",
        },
        timeout=10,
    )
    assert answer.json()["status"] == "reserved", answer.text
    banner = (served.workdir / "server.log").read_text()
    assert f"callbid serving on {served.url}" in banner
    assert "callbid demo --json" in banner
    for secret in ("key", "admin_token", "carrier_auth_token"):
        assert demo[secret] not in banner, secret
