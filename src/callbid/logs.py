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
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from callbid.settings import Settings

#: The attribute events put their fields in (`logger.info(name, extra={FIELDS: {...}})`).
FIELDS = "fields"

#: How long the writer rests after a write: lines reach the stream at most this late.
BATCH_PAUSE_SECONDS = 0.05

_writer: _Writer | None = None
_NOT_DIGITS = re.compile(r"\D")


def mask_number(number: str | None) -> str | None:
    """A phone number as logs may show it: its last four digits only (`***0123`)."""
    if not number:
        return None
    digits = _NOT_DIGITS.sub("", number)
    return "***" + digits[-4:] if len(digits) > 4 else "***"


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
        if not record.args and not record.exc_info:
            return record  # an event: nothing to resolve, nothing to copy (the hot path)
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = record.exc_text or logging.Formatter().formatException(
                record.exc_info
            )
            record.exc_info = None
        return record


class _Writer(threading.Thread):
    """Formats queued records and writes them out, every record waiting at once in one write
    (one system call, one hand-over of the interpreter lock, however many records)."""

    def __init__(self, stream: TextIO | None, formatter: logging.Formatter) -> None:
        super().__init__(name="callbid-log-writer", daemon=True)
        self.records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self.stream = stream
        self.formatter = formatter

    def run(self) -> None:
        running = True
        while running:
            batch = [self.records.get()]
            while not self.records.empty():
                batch.append(self.records.get_nowait())
            running = None not in batch
            lines = [self._line(record) for record in batch if record is not None]
            if lines:
                # Looked up at each write: whoever replaced sys.stderr since gets the lines.
                stream = self.stream or sys.stderr
                stream.write("\n".join(lines) + "\n")
                stream.flush()
            if running:
                # Under load, waking for every record would cost the event loop a thread
                # switch per request; a short pause lets the next records gather.
                time.sleep(BATCH_PAUSE_SECONDS)

    def _line(self, record: logging.LogRecord) -> str:
        try:
            return self.formatter.format(record)
        except Exception as exc:  # a record that cannot be formatted must not stop the log
            return f"unformattable log record from {record.name}: {exc!r}"

    def stop(self) -> None:
        """Write out what is queued, then end the thread."""
        self.records.put(None)
        self.join()


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger of this process (callbid's, uvicorn's, SQLAlchemy's) to `stream`
    (stderr) in `settings.log_format` at `settings.log_level`, through a queue and one
    writer thread. Calling it again replaces the previous set-up."""
    global _writer
    stop_logging()
    # What no line shows is not gathered for every record: the caller's frame (a stack
    # walk), thread and process names (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter()
    _writer = _Writer(stream, formatter)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_Enqueue(_writer.records))
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    # Alembic's "Context impl …" lines at every start are noise below warnings.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    _writer.start()
    atexit.register(stop_logging)


def stop_logging() -> None:
    """Write out what is queued and detach `configure_logging`'s handler (tests, exit)."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Enqueue):
            root.removeHandler(handler)


def _timestamp(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
