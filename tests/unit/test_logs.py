"""Log records as JSON or text lines, events' fields, masked callers, the queue's writer."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from callbid.logs import (
    FIELDS,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    mask_number,
    stop_logging,
)
from callbid.service.events import key_id
from callbid.settings import Settings


def record(message: str, *args: object, **fields: object) -> logging.LogRecord:
    made = logging.LogRecord("callbid.events", logging.INFO, __file__, 1, message, args, None)
    if fields:
        setattr(made, FIELDS, fields)
    made.created = 1_764_000_000.123
    return made


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+12125550123", "***0123"),
        ("(212) 555-0199", "***0199"),
        ("sip:12125550123@example.com", "***0123"),
        ("1234", "***"),
        ("", None),
        (None, None),
    ],
)
def test_numbers_keep_their_last_four_digits(number: str | None, masked: str | None) -> None:
    assert mask_number(number) == masked


def test_an_event_is_one_json_object_with_its_fields() -> None:
    line = JsonFormatter().format(record("ping", uuid="u-1", status="reserved", payout=12.5))
    assert json.loads(line) == {
        "ts": "2025-11-24T16:00:00.123Z",
        "level": "info",
        "logger": "callbid.events",
        "event": "ping",
        "uuid": "u-1",
        "status": "reserved",
        "payout": 12.5,
    }
    assert "\n" not in line


def test_a_plain_record_is_its_message_and_traceback() -> None:
    plain = record("restored %d live reservations", 3)
    plain.exc_text = "Traceback (most recent call last):\n  boom"
    assert json.loads(JsonFormatter().format(plain)) == {
        "ts": "2025-11-24T16:00:00.123Z",
        "level": "info",
        "logger": "callbid.events",
        "message": "restored 3 live reservations",
        "exc": "Traceback (most recent call last):\n  boom",
    }


def test_text_lines_are_for_people() -> None:
    line = TextFormatter().format(record("ping", uuid="u-1", reason_code=None))
    assert line == "2025-11-24T16:00:00.123Z INFO     callbid.events ping uuid=u-1"


def test_key_ids_are_fingerprints_not_keys() -> None:
    key = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert key_id(key) == key_id(key)
    assert len(key_id(key)) == 12
    assert key_id(key) not in key
    assert key_id(key) != key_id(key.replace("7", "8"))


@pytest.fixture
def restored_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    stop_logging()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restored_root")
def test_configured_logging_writes_every_logger_through_the_queue() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_level="INFO", log_format="json"), stream)
    logging.getLogger("callbid.events").info("ping", extra={FIELDS: {"uuid": "u-2"}})
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    logging.getLogger("callbid.test").debug("below the level")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("callbid.test").exception("failed")
    stop_logging()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("event") or line["message"] for line in lines] == [
        "ping",
        "Started server process [7]",
        "failed",
    ]
    assert lines[0]["uuid"] == "u-2"
    assert "RuntimeError: boom" in lines[2]["exc"]


@pytest.mark.usefixtures("restored_root")
def test_text_format_and_warning_level() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_level="warning", log_format="TEXT"), stream)
    logging.getLogger("callbid.events").info("ping", extra={FIELDS: {"uuid": "u-3"}})
    logging.getLogger("callbid.test").warning("disk %s", "slow")
    stop_logging()
    assert stream.getvalue().splitlines()[0].endswith("WARNING  callbid.test disk slow")
    assert "u-3" not in stream.getvalue()


def test_an_unknown_level_or_format_is_refused() -> None:
    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="loud")
    with pytest.raises(ValidationError, match="log_format"):
        Settings(log_format="xml")
