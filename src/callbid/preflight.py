"""What the command line checks before it opens the database or listens, and how it words a
mistake the operator can fix: one line saying what to do, never a traceback."""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from callbid.settings import Settings

DATABASE_VARIABLE = "CALLBID_DATABASE_URL (or --database-url)"


class Refused(Exception):
    """The command cannot run as configured; the message says what to do."""


def require_existing_database(settings: Settings) -> None:
    """Refuse a SQLite file that is not there: a command that reads the server's database
    must not create an empty one (with a demo company the running server never sees)."""
    path = settings.sqlite_path
    if path is not None and not path.exists():
        raise Refused(
            f"no database at {path.resolve()}: run `callbid serve` there first (it creates it), "
            f"or point {DATABASE_VARIABLE} at the server's database"
        )


def require_creatable_database(settings: Settings) -> None:
    """Refuse a SQLite path whose directory is missing or not writable."""
    path = settings.sqlite_path
    if path is None or path.exists():
        return
    directory = path.resolve().parent
    if not directory.is_dir():
        problem = "does not exist"
    elif not os.access(directory, os.W_OK | os.X_OK):
        problem = "is not writable"
    else:
        return
    raise Refused(
        f"cannot create the SQLite database {path.resolve()}: the directory {directory} "
        f"{problem}; create it or set {DATABASE_VARIABLE} to a writable path"
    )


def require_free_port(host: str, port: int) -> None:
    """Refuse a port another process listens on (the server would fail after migrating)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Refused(
                    f"port {port} on {host} is in use: stop the other server, or listen on "
                    "another port with --port (or CALLBID_PORT)"
                ) from None
            raise Refused(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(check --host / CALLBID_HOST)"
            ) from None


def explain_database_error(exc: BaseException, settings: Settings) -> str | None:
    """One line for a database failure the operator can fix (a missing PostgreSQL database,
    a server not running, a refused login, a SQLite file that cannot be opened), None for
    anything else."""
    for cause in _causes(exc):
        if settings.is_sqlite:
            if isinstance(cause, sqlite3.OperationalError):
                return _sqlite_line(settings, str(cause))
            continue
        line = _postgres_line(settings, cause)
        if line is not None:
            return line
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, what it wraps (SQLAlchemy's `orig`) and its causes, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [current.__context__, current.__cause__]
        if isinstance(orig, BaseException):
            pending.append(orig)


def _sqlite_line(settings: Settings, message: str) -> str:
    path = settings.sqlite_path
    where = path.resolve() if path is not None else Path(settings.database_url)
    return f"cannot open the SQLite database {where}: {message}; check {DATABASE_VARIABLE}"


def _postgres_line(settings: Settings, cause: BaseException) -> str | None:
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        return None
    host, port = url.host or "localhost", url.port or 5432
    user, name = url.username or "postgres", url.database or ""
    kind = type(cause).__name__
    if kind == "InvalidCatalogNameError":
        return (
            f"PostgreSQL database {name!r} does not exist on {host}:{port}: create it with "
            f"`createdb -h {host} -p {port} -U {user} {name}`, or fix {DATABASE_VARIABLE}"
        )
    if kind in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
        return f"PostgreSQL on {host}:{port} refused user {user!r}: {cause}"
    if isinstance(cause, ConnectionRefusedError | socket.gaierror):
        return (
            f"cannot connect to PostgreSQL at {host}:{port} ({cause.strerror or cause}): "
            f"is it running? check {DATABASE_VARIABLE}"
        )
    if isinstance(cause, TimeoutError):
        return (
            f"PostgreSQL at {host}:{port} did not answer within "
            f"{settings.database_timeout_seconds:g} s (CALLBID_DATABASE_TIMEOUT_SECONDS)"
        )
    return None
