"""A Sentinel-managed Redis of the tests' own: a primary, two replicas and three sentinels,
each a `redis-server` on a free port with its files in a temporary directory.

`RedisSentinel` starts them, waits until every sentinel sees the primary, both replicas and
the other two sentinels, and gives the `redis+sentinel://` URL; `stop` kills them all.
Sentinels decide quickly (`down-after-milliseconds` 1000), so a killed primary is replaced
within a few seconds.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import RedisError

MASTER = "callbid"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
START_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Node:
    """One redis-server (data node or sentinel) and its process."""

    port: int
    proc: subprocess.Popen[bytes]

    def client(self, **options: Any) -> Redis:
        return Redis(port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0, **options)

    def kill(self) -> None:
        """`kill -9`: no shutdown, no last write to disk beyond what it already synced."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@dataclass
class RedisSentinel:
    workdir: Path
    aof: bool = False
    data: list[Node] = field(default_factory=list)  # data[0] is the first primary
    sentinels: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        try:
            primary = self._start_data(binary, "primary", replica_of=None)
            for n in (1, 2):
                self._start_data(binary, f"replica{n}", replica_of=primary.port)
            self._wait(self._replicas_synced, "the replicas did not sync")
            for n in (1, 2, 3):
                self._start_sentinel(binary, n, primary.port)
            self._wait(self._sentinels_agree, "the sentinels did not agree")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.sentinels + self.data:
            node.kill()

    def master_port(self) -> int:
        """The primary's port as the first sentinel that answers names it now."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    _, port = client.sentinel_get_master_addr_by_name(MASTER)
                    return int(port)
            except RedisError:
                continue
        raise AssertionError("no sentinel answers")

    def node(self, port: int) -> Node:
        return next(node for node in self.data if node.port == port)

    # ------------------------------------------------------------------ starting

    def _spawn(self, binary: str, conf: Path, *extra: str) -> subprocess.Popen[bytes]:
        with (conf.parent / "server.log").open("wb") as log:  # the child keeps its own copy
            return subprocess.Popen(
                [binary, str(conf), *extra], stdout=log, stderr=subprocess.STDOUT, cwd=conf.parent
            )

    def _start_data(self, binary: str, name: str, replica_of: int | None) -> Node:
        home = self.workdir / name
        home.mkdir()
        port = free_port()
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {home}",
            'save ""',
            # Any node may be promoted: none waits 5 s before a replica's first sync.
            "repl-diskless-sync-delay 0",
            *(["appendonly yes", "appendfsync always"] if self.aof else ["appendonly no"]),
            *([f"replicaof 127.0.0.1 {replica_of}"] if replica_of else []),
        ]
        conf = home / "redis.conf"
        conf.write_text("\n".join(lines) + "\n")
        node = Node(port, self._spawn(binary, conf))
        self.data.append(node)
        return node

    def _start_sentinel(self, binary: str, n: int, primary_port: int) -> None:
        home = self.workdir / f"sentinel{n}"
        home.mkdir()
        port = free_port()
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {home}",
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER} 2",
        ]
        conf = home / "sentinel.conf"  # the sentinel rewrites it: it must be its own
        conf.write_text("\n".join(lines) + "\n")
        self.sentinels.append(Node(port, self._spawn(binary, conf, "--sentinel")))

    def _wait(self, ready: Any, failure: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            for node in self.data + self.sentinels:
                if node.proc.poll() is not None:
                    raise AssertionError(f"redis-server on port {node.port} exited")
            try:
                if ready():
                    return
            except RedisError:
                pass
            time.sleep(0.05)
        raise AssertionError(failure)

    def _replicas_synced(self) -> bool:
        with self.data[0].client() as client:
            info = client.info("replication")
        states = [info.get(f"slave{n}", {}).get("state") for n in range(len(self.data) - 1)]
        return states == ["online"] * (len(self.data) - 1)

    def _sentinels_agree(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_master(MASTER)
            if (
                state["port"] != self.data[0].port
                or state["num-other-sentinels"] != len(self.sentinels) - 1
                or state["num-slaves"] != len(self.data) - 1
            ):
                return False
        return True


@contextmanager
def running_sentinel(workdir: Path, *, aof: bool = False) -> Iterator[RedisSentinel]:
    """A started deployment, killed on exit whatever happened."""
    deployment = RedisSentinel(workdir, aof=aof)
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.stop()
