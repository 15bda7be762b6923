"""A local Redis Cluster from the machine's `redis-server`, on free ports, for tests and benches.

`running_cluster(workdir)` starts the nodes (each with its data in `workdir`), joins them with
`redis-cli --cluster create`, waits until every node reports `cluster_state:ok`, yields a
`LocalCluster` (its `url` is a `redis+cluster://` URL for callbid) and kills every node on
exit, whatever happened. Only pytest-free code here: `bench/race.py --cluster` imports it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
SLOTS = 16384


class ClusterError(RuntimeError):
    """The local cluster could not be started (or did not become healthy in time)."""


@dataclass(frozen=True)
class Certificates:
    """A certificate authority and one certificate it signed for 127.0.0.1 (server and
    client alike), as PEM files."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path) -> Certificates:
        """Made with the machine's `openssl`, valid for a day."""
        if shutil.which("openssl") is None:
            raise ClusterError("openssl is needed to make a TLS cluster's certificates")
        directory.mkdir(parents=True, exist_ok=True)
        ca, ca_key = directory / "ca.crt", directory / "ca.key"
        cert, key, request = directory / "node.crt", directory / "node.key", directory / "node.csr"
        names = directory / "names.cnf"
        names.write_text(f"subjectAltName=IP:{HOST},DNS:localhost\n")
        extra = ["-CAcreateserial", "-extfile", names]
        for command in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request],
            ["x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-out", cert, *extra],
        ):
            subject = ["-subj", f"/CN={HOST}"] if command[0] == "req" else []
            subprocess.run(
                ["openssl", *map(str, command), *subject, "-days", "1"],
                check=True,
                capture_output=True,
                timeout=30,
            )
        return cls(ca, cert, key)

    def server_args(self) -> list[str]:
        """redis-server's: TLS on its port, its cluster bus and its replication."""
        return [
            *("--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key)),
            *("--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no"),
            *("--tls-cluster", "yes", "--tls-replication", "yes"),
        ]


def redis_server() -> str | None:
    """The `redis-server` binary, if the machine has one (with `redis-cli` next to it)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    return server if server and cli else None


def free_port() -> int:
    """A port the OS just handed out as free (bind to port 0), released for the caller."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Node:
    port: int
    bus_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    tls: Certificates | None = None

    def client(self, timeout: float = 1.0) -> Redis:
        tls = {} if self.tls is None else {"ssl": True, "ssl_ca_certs": str(self.tls.ca)}
        return Redis(host=HOST, port=self.port, socket_timeout=timeout, **tls)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _in_sync(node: Node) -> bool:
    """True for a master, and for a replica whose link to its master is up (synced)."""
    info = node.client().info("replication")
    return bool(info["role"] == "master" or info.get("master_link_status") == "up")


@dataclass
class LocalCluster:
    """Nodes on 127.0.0.1; the first `masters` start as masters, the rest as their replicas."""

    workdir: Path
    masters: int = 3
    replicas: int = 0
    appendonly: bool = False
    node_timeout_ms: int = 1000
    #: Every connection (clients, the cluster bus, replication) over TLS with these.
    tls: Certificates | None = None
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        alive = ",".join(f"{HOST}:{node.port}" for node in self.nodes if node.alive)
        if self.tls is None:
            return f"redis+cluster://{alive}"
        return f"rediss+cluster://{alive}?ssl_ca_certs={self.tls.ca}"

    def start(self) -> None:
        binary = redis_server()
        if binary is None:
            raise ClusterError("redis-server and redis-cli are needed for a local cluster")
        for _ in range(self.masters * (1 + self.replicas)):
            self.nodes.append(self._launch(binary))
        self._wait(lambda node: bool(node.client().ping()))
        members = [f"{HOST}:{node.port}" for node in self.nodes]
        replicas = ["--cluster-replicas", str(self.replicas)]
        tls = [] if self.tls is None else ["--tls", "--cacert", str(self.tls.ca)]
        done = subprocess.run(
            ["redis-cli", *tls, "--cluster", "create", *members, *replicas, "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        self.wait_ok()
        if self.replicas:  # a replica that never synced with its master cannot replace it
            self._wait(_in_sync)

    def _launch(self, binary: str) -> Node:
        node = Node(free_port(), free_port(), self.workdir, tls=self.tls)
        node.workdir = self.workdir / str(node.port)
        node.workdir.mkdir(parents=True)
        self._spawn(binary, node)
        return node

    def restart(self, port: int) -> None:
        """Start a killed node again on its ports and its `nodes.conf`: it takes back its
        place (and, without AOF, comes back empty)."""
        binary = redis_server()
        assert binary is not None
        node = self.node(port)
        assert not node.alive
        self._spawn(binary, node)
        self.wait_ok()

    def _spawn(self, binary: str, node: Node) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else []
        port = ["--port", str(node.port)]
        if self.tls is not None:
            port = ["--port", "0", "--tls-port", str(node.port), *self.tls.server_args()]
        args = [
            *port,
            *("--bind", HOST, "--cluster-enabled", "yes"),
            *("--cluster-port", str(node.bus_port), "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", str(self.node_timeout_ms), "--save", ""),
            *("--dir", str(node.workdir), "--logfile", "redis.log", *persistence),
        ]
        node.proc = subprocess.Popen(
            [binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ok(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until every live node says `cluster_state:ok` and sees every slot served."""

        def healthy(node: Node) -> bool:
            info = node.client().execute_command("CLUSTER INFO")
            return bool(info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == SLOTS)

        self._wait(healthy, timeout)

    def _wait(self, ready: object, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        pending = [node for node in self.nodes if node.alive]
        while pending:
            for node in list(pending):
                with contextlib.suppress(Exception):
                    if ready(node):  # type: ignore[operator]
                        pending.remove(node)
            if pending and time.monotonic() > deadline:
                ports = [node.port for node in pending]
                raise ClusterError(f"cluster nodes {ports} not ready after {timeout:.0f} s")
            if pending:
                time.sleep(0.05)

    def node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def replica_of(self, port: int) -> Node:
        """A live replica of the master on `port`."""
        for node in self.nodes:
            if node.alive and node.port != port:
                info = node.client().info("replication")
                if info["role"] == "slave" and int(info["master_port"]) == port:
                    return node
        raise ClusterError(f"no live replica of the master on {port}")

    def slot_owners(self) -> dict[int, int]:
        """Slot -> port of the master serving it, as a live node sees the cluster."""
        node = next(node for node in self.nodes if node.alive)
        owners: dict[int, int] = {}
        for first, last, master, *_ in node.client().execute_command("CLUSTER SLOTS"):
            for slot in range(int(first), int(last) + 1):
                owners[slot] = int(master[1])
        return owners

    def owner_of(self, key: str) -> int:
        """The port of the master serving `key`'s slot."""
        slot = int(self.nodes[0].client().execute_command("CLUSTER KEYSLOT", key))
        return self.slot_owners()[slot]

    def kill(self, port: int) -> None:
        """`kill -9` of one node: no shutdown, no last write to disk."""
        proc = self.node(port).proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for node in self.nodes:
            self.kill(node.port)


@contextlib.contextmanager
def running_cluster(
    workdir: Path,
    *,
    masters: int = 3,
    replicas: int = 0,
    appendonly: bool = False,
    node_timeout_ms: int = 1000,
    tls: bool = False,
) -> Iterator[LocalCluster]:
    """A healthy local cluster, every node killed on exit (also when starting it failed);
    with `tls`, every connection is TLS, with certificates made in `workdir`."""
    certificates = Certificates.make(workdir / "tls") if tls else None
    cluster = LocalCluster(workdir, masters, replicas, appendonly, node_timeout_ms, certificates)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
