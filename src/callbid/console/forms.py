"""The console's forms: a form's fields, what was typed turned into the body the configuration
use cases take (the same commands as the REST API), and every refusal turned back into a
message next to its field in the API's own words. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from callbid.domain.errors import CallbidError, InvalidField

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_RANGE = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*(?:-(mon|tue|wed|thu|fri|sat|sun)[a-z]*)?$"
)
GENERAL = "__all__"


@dataclass(frozen=True, slots=True)
class Field:
    """One input. `kind`: text, number, check, select, multi (several ids), textarea, hours
    (one block per line), filters (one rule per line), lines (one value per line) or headers
    (`Name: value` per line). `source` names the company's rows a select or multi offers
    (`targets`, `groups`, `caller_lists`)."""

    name: str
    label: str
    kind: str = "text"
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False
    #: What an empty text or choice means (`None` for an optional reference).
    empty: Any = ""
    source: str = ""


@dataclass(slots=True)
class FormState:
    """What the form shows: the values as typed and the messages per field (`GENERAL` for
    the form as a whole)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def typed_values(form: Any, fields: Sequence[Field]) -> dict[str, Any]:
    """The form's values as typed (checkboxes as bools, multi-selects as lists of strings)."""
    values: dict[str, Any] = {}
    for f in fields:
        if f.kind == "check":
            values[f.name] = form.get(f.name) is not None
        elif f.kind == "multi":
            values[f.name] = [str(v) for v in form.getlist(f.name)]
        else:
            values[f.name] = str(form.get(f.name, "")).strip()
    return values


def to_body(values: Mapping[str, Any], fields: Sequence[Field], state: FormState) -> dict[str, Any]:
    """The command body of typed values; what cannot be read is noted in `state` and left out
    (an empty number is null, an empty text or choice is the field's `empty`)."""
    body: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name)
        try:
            body[f.name] = _convert(f, value)
        except ValueError as problem:
            state.add(f.name, str(problem))
    return body


def _convert(f: Field, value: Any) -> Any:
    if f.kind == "check":
        return bool(value)
    if f.kind == "multi":
        return [int(v) if str(v).isdigit() else v for v in value or []]
    text = "" if value is None else str(value)
    if f.kind == "number":
        return text if text else None
    if f.kind == "hours":
        return [parse_hours_line(line) for line in _lines(text)]
    if f.kind == "filters":
        return [parse_filter_line(line) for line in _lines(text)]
    if f.kind == "lines":
        return _lines(text)
    if f.kind == "headers":
        return dict(parse_header_line(line) for line in _lines(text))
    return text if text else f.empty


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_days(text: str) -> list[int]:
    """`mon-fri`, `sat,sun`, `every day`: weekday numbers (0 = Monday)."""
    text = text.strip().lower()
    if text in ("every day", "daily", "all", "mon-sun"):
        return list(range(7))
    days: list[int] = []
    for part in text.split(","):
        found = _DAY_RANGE.match(part.strip())
        if found is None:
            raise ValueError(f"{part.strip()!r} is not a day (mon … sun, mon-fri, every day)")
        first = DAYS.index(found.group(1))
        last = DAYS.index(found.group(2)) if found.group(2) else first
        days += (
            list(range(first, last + 1)) if first <= last else [*range(first, 7), *range(last + 1)]
        )
    return days


def parse_hours_line(line: str) -> dict[str, Any]:
    """`mon-fri 09:00-17:00` (or `every day 18:00-06:00`, overnight) as an hours block."""
    days, _, times = line.rpartition(" ")
    opening, dash, closing = times.partition("-")
    if not days or not dash:
        raise ValueError(f"{line!r}: write days then HH:MM-HH:MM, e.g. mon-fri 09:00-17:00")
    return {"days": parse_days(days), "open": opening.strip(), "close": closing.strip()}


def parse_header_line(line: str) -> tuple[str, str]:
    """`X-Api-Key: secret` as a header's name and value."""
    name, sep, value = line.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"{line!r}: write Name: value")
    return name.strip(), value.strip()


def parse_filter_line(line: str) -> dict[str, Any]:
    """`caller_state in NY, NJ` (tag, operator, comma-separated values) as a tag rule."""
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise ValueError(f"{line!r}: write tag operator values, e.g. caller_state in NY, NJ")
    values = [v.strip() for v in parts[2].split(",") if v.strip()] if len(parts) == 3 else []
    return {"tag": parts[0], "op": parts[1], "values": values}


def hours_text(blocks: Iterable[Mapping[str, Any]]) -> str:
    """Stored hours blocks as the lines the form takes."""
    lines = []
    for block in blocks:
        days = ",".join(DAYS[d] for d in block.get("days", []))
        lines.append(
            f"{'every day' if days == ','.join(DAYS) else days} "
            f"{block.get('open')}-{block.get('close')}"
        )
    return "\n".join(lines)


def filters_text(rules: Iterable[Mapping[str, Any]]) -> str:
    return "\n".join(
        f"{r.get('tag')} {r.get('op')} {', '.join(r.get('values', []))}".rstrip() for r in rules
    )


def note_refusal(state: FormState, refused: Exception, fields: Sequence[Field]) -> None:
    """Each problem of a refused command next to its field, in the API's words."""
    names = {f.name for f in fields}
    if isinstance(refused, ValidationError):
        for error in refused.errors():
            where = [str(part) for part in error.get("loc", ())]
            _place(state, names, where, str(error.get("msg", "")))
    elif isinstance(refused, InvalidField):
        for path, message in refused.problems:
            _place(state, names, [str(part) for part in path], message)
    elif isinstance(refused, CallbidError):
        name, sep, message = refused.info.partition(": ")
        if sep and name in names:
            state.add(name, message)
        else:
            state.add(GENERAL, refused.info)
    else:
        raise refused


def _place(state: FormState, names: set[str], loc: list[str], message: str) -> None:
    if loc and loc[0] in names:
        rest = loc[1:]
        if rest and rest[0].isdigit():  # a list field (hours, filters): its line
            rest = [f"line {int(rest[0]) + 1}", *rest[1:]]
        where = ".".join(rest)
        state.add(loc[0], f"{where}: {message}" if where else message)
        return
    # A rule over several fields names the one at fault first (`Value error, url: …`).
    named = message.removeprefix("Value error, ").partition(": ")[0]
    if named in names:
        state.add(named, message)
    else:
        state.add(GENERAL, f"{'.'.join(loc)}: {message}" if loc else message)
