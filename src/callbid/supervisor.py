"""`callbid serve --workers N`: N worker processes on one port, each with a listening socket
of its own (SO_REUSEPORT), watched and restarted by this process.

With one socket shared by every worker (uvicorn's own `--workers`), whichever worker wakes
first accepts a burst of new connections, and keep-alive connections stay where they landed:
measured here, two workers behind a shared socket served 1.6k to 2.5k pings/s from run to run
depending on how the connections happened to split. With a socket per worker the kernel
spreads connections across them by their addresses.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from prometheus_client.multiprocess import mark_process_dead

log = logging.getLogger("callbid.supervisor")

APP = "callbid.api.app:app_from_environment"
PR_SET_PDEATHSIG = 1  # Linux prctl option
BACKLOG = 2048
STOP_GRACE_SECONDS = 15.0
#: A worker that dies this soon after starting, this many times in a row, stops everything:
#: it cannot start (a bad setting, an unreachable database), and restarting will not help.
EARLY_DEATH_SECONDS = 10.0
EARLY_DEATHS_ALLOWED = 3


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def run_worker(options: dict[str, Any], parent: int) -> None:
    """One worker process: its own socket on the shared port, one uvicorn server. It gets
    SIGTERM should the supervisor die without stopping it (killed with SIGKILL, say)."""
    import uvicorn

    from callbid.logs import configure_logging
    from callbid.settings import Settings

    configure_logging(Settings())
    _terminate_with_parent(parent)
    sock = reuseport_socket(options["host"], options["port"])
    sock.listen(BACKLOG)
    config = uvicorn.Config(APP, factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])


def _terminate_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    """Starts the workers, restarts one that dies, stops them all on SIGTERM or SIGINT."""

    def __init__(self, workers: int, options: dict[str, Any]) -> None:
        self._count = workers
        self._options = options
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        self._started: dict[int, float] = {}
        self._stopping = False

    def run(self) -> int:
        # Claims the port before any worker starts (and fails at once if another program
        # holds it); bound but never listening, it receives no connections.
        guard = reuseport_socket(self._options["host"], self._options["port"])
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._stop)
        metrics_dir = tempfile.TemporaryDirectory(prefix="callbid-metrics-")
        # Every worker writes its metrics there; `/metrics` in any worker sums them all.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir.name)
        try:
            self._workers = [self._start() for _ in range(self._count)]
            return self._watch()
        finally:
            self._stop_all()
            guard.close()
            metrics_dir.cleanup()

    def _start(self) -> BaseProcess:
        process = self._context.Process(
            target=run_worker, args=(self._options, os.getpid()), daemon=False
        )
        process.start()
        assert process.pid is not None
        self._started[process.pid] = time.monotonic()
        log.info("started worker process [%d]", process.pid)
        return process

    def _watch(self) -> int:
        early_deaths = 0
        while not self._stopping:
            wait([w.sentinel for w in self._workers], timeout=1.0)
            for index, worker in enumerate(self._workers):
                if self._stopping or worker.is_alive():
                    continue
                assert worker.pid is not None
                lived = time.monotonic() - self._started.pop(worker.pid, 0.0)
                with contextlib.suppress(OSError):
                    mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
                log.warning(
                    "worker [%d] exited (%s) after %.1f s", worker.pid, worker.exitcode, lived
                )
                early_deaths = early_deaths + 1 if lived < EARLY_DEATH_SECONDS else 0
                if early_deaths >= EARLY_DEATHS_ALLOWED:
                    log.error("workers keep dying at start; stopping")
                    return 1
                self._workers[index] = self._start()
        return 0

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join()
