"""Process logging: one JSON object per line (or readable text) on stderr, written by a
background thread so that the event loop never waits on a slow terminal or pipe.

Events (`callbid.service.events`) carry their fields in `record.fields`; every other record
is `{"ts", "level", "logger", "message"}`. Nothing here knows what an event means.
"""

from __future__ import annotations

import atexit
import copy
import logging
import logging.handlers
import queue
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from callbid.settings import Settings

#: The attribute events put their fields in (`logger.info(name, extra={FIELDS: {...}})`).
FIELDS = "fields"

_listener: logging.handlers.QueueListener | None = None


def mask_number(number: str | None) -> str | None:
    """A phone number as logs may show it: its last four digits only (`***0123`)."""
    if not number:
        return None
    digits = [c for c in number if c.isdigit()]
    return "***" + "".join(digits[-4:]) if len(digits) > 4 else "***"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `ts` (UTC, milliseconds), `level`, `logger`, then the
    event's fields, or `message`; `exc` holds a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, FIELDS, None)
        if fields:
            entry["event"] = record.getMessage()
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`ts level logger message key=value …`, for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname:<8} {record.name} {record.getMessage()}"
        fields = getattr(record, FIELDS, None)
        if fields:
            line += "".join(f" {k}={v}" for k, v in fields.items() if v is not None)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class _Enqueue(logging.handlers.QueueHandler):
    """Hands records to the writer thread unformatted (the stdlib one would format them here
    with a plain formatter), with their message and any traceback already made text."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = record.exc_text or logging.Formatter().formatException(
                record.exc_info
            )
            record.exc_info = None
        return record


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger of this process (callbid's, uvicorn's, SQLAlchemy's) to `stream`
    (stderr) in `settings.log_format` at `settings.log_level`, through a queue and one
    writer thread. Calling it again replaces the previous set-up."""
    global _listener
    stop_logging()
    formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter()
    sink = logging.StreamHandler(stream or sys.stderr)
    sink.setFormatter(formatter)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, sink)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_Enqueue(records))
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Alembic's "Context impl …" lines at every start are noise below warnings.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    _listener.start()
    atexit.register(stop_logging)


def stop_logging() -> None:
    """Write out what is queued and detach `configure_logging`'s handler (tests, exit)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Enqueue):
            root.removeHandler(handler)


def _timestamp(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
