"""Field types, shared shapes and base models of the configuration commands and their views."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from callbid.adapters.phone import to_e164
from callbid.domain.hours import block_from, format_hhmm, parse_hhmm
from callbid.domain.model import FilterOp

# The default of PATCH fields: typed Any so that `Field(UNSET)` fits any annotation. A field
# left out of a PATCH body keeps its stored value (bodies are read with `exclude_unset`).
UNSET: Any = None

MAX_TAG_VALUES = 1000
MAX_RULES = 100
MAX_HOURS_BLOCKS = 100
MAX_LIST_NUMBERS = 100_000
SINGLE_VALUE_OPS = frozenset(
    {FilterOp.EQUALS, FilterOp.NOT_EQUALS, FilterOp.GREATER_THAN, FilterOp.LESS_THAN}
)
NO_VALUE_OPS = frozenset({FilterOp.EXISTS, FilterOp.NOT_EXISTS})


def normalise_number(raw: str) -> str:
    """`raw` in E.164 (national forms read as US numbers); ValueError when not a valid number."""
    e164 = to_e164(raw)
    if e164 is None:
        raise ValueError(f"not a valid phone number: {raw!r}")
    return e164


def normalise_destination(raw: str) -> str:
    """An E.164 number or a `sip:` URI (scheme lower-cased); ValueError otherwise."""
    text = raw.strip()
    scheme, colon, rest = text.partition(":")
    if colon and scheme.lower() == "sip":
        if not rest or any(ch.isspace() for ch in rest):
            raise ValueError("a SIP destination must look like sip:user@host")
        return "sip:" + rest
    try:
        return normalise_number(text)
    except ValueError:
        raise ValueError("destination must be an E.164 phone number or a sip: URI") from None


def check_timezone(name: str) -> str:
    """`name` when it is an IANA time zone (`America/New_York`, `UTC`); ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory of the zone database (`America`) or a name too long for a path.
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name like America/New_York"
        ) from None
    return name


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OptionalName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
PublisherId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(description="the publisher's identifier as sent in pings (`publisher_id`)"),
]
PhoneNumber = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(normalise_number),
    Field(description="phone number; stored in E.164, national forms are read as US numbers"),
]
Destination = Annotated[
    str,
    StringConstraints(max_length=300),
    AfterValidator(normalise_destination),
    Field(description="where calls go: an E.164 number or a `sip:` URI"),
]
TimeZone = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(check_timezone),
    Field(description="IANA time zone used for business hours and cap periods"),
]
# Integer columns are 32-bit on PostgreSQL.
MAX_INT = 2**31 - 1
Cap = Annotated[int, Field(ge=0, le=MAX_INT)]
Id = Annotated[int, Field(ge=1, le=MAX_INT)]

Priority = Annotated[int, Field(ge=0, le=1_000_000, description="lower is tried first")]
Weight = Annotated[int, Field(ge=1, le=1_000_000, description="share among equal priorities")]
RingTimeout = Annotated[int, Field(ge=1, le=600, description="seconds to ring the buyer")]
Seconds = Annotated[int, Field(ge=0, le=31_536_000)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Ttl = Annotated[int, Field(ge=1, le=3600, description="seconds a reservation stays valid")]
PingTimeout = Annotated[
    float, Field(ge=0.05, le=30, description="seconds to wait for passthrough buyers' bids")
]
RatePerSecond = Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)]
RateBurst = Annotated[int, Field(ge=1, le=1_000_000)]
CampaignId = Annotated[int, Field(ge=1, le=MAX_INT, description="the campaign it belongs to")]
NumberList = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(max_length=MAX_LIST_NUMBERS, description="phone numbers; stored in E.164, de-duplicated"),
]


def unique_ids(ids: list[int]) -> list[int]:
    return list(dict.fromkeys(ids))


IdList = Annotated[list[Id], Field(max_length=10_000), AfterValidator(unique_ids)]


class InModel(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None:
            del prop["default"]


class PatchModel(BaseModel):
    """A PATCH body: every field optional, a field left out keeps its value; `null` is only
    accepted where the field is nullable."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null_defaults)

    def changes(self, *exclude: str) -> dict[str, Any]:
        """The fields sent, as JSON-ready column values, without `exclude`."""
        return self.model_dump(mode="json", exclude_unset=True, exclude=set(exclude))

    def sent(self, name: str) -> bool:
        return name in self.model_fields_set


class OutModel(BaseModel):
    """A response body, read from table rows."""

    model_config = ConfigDict(from_attributes=True)


class HoursBlock(BaseModel):
    """Opening hours on some weekdays; `close <= open` runs overnight, `close` may be 24:00."""

    model_config = ConfigDict(extra="forbid")

    days: list[int] = Field(
        min_length=1, max_length=7, description="weekdays, 0 = Monday ... 6 = Sunday"
    )
    open: str = Field(description="local opening time HH:MM", examples=["09:00"])
    close: str = Field(description="local closing time HH:MM (24:00 allowed)", examples=["17:00"])

    @model_validator(mode="after")
    def _valid_blocks(self) -> HoursBlock:
        for day in self.days:
            block_from(day, self.open, self.close)
        self.days = sorted(set(self.days))
        self.open = format_hhmm(parse_hhmm(self.open))
        self.close = format_hhmm(parse_hhmm(self.close))
        return self


Hours = Annotated[
    list[HoursBlock],
    Field(
        max_length=MAX_HOURS_BLOCKS,
        description="business hours in `timezone`; an empty list means open around the clock",
    ),
]


class HoursBlockOut(BaseModel):
    """A stored block of business hours (see the request shape for its meaning)."""

    days: list[int]
    open: str
    close: str


class TagFilter(BaseModel):
    """A rule `tag op values` on a request's tags.

    `equals`, `not_equals`, `greater_than` and `less_than` take exactly one value (numeric for
    the last two); `in`, `not_in`, `begins_with` and `contains` take one or more; `exists` and
    `not_exists` take none.
    """

    model_config = ConfigDict(extra="forbid")

    tag: str = Field(
        min_length=1, max_length=100, description="tag name, e.g. caller_state (case-insensitive)"
    )
    op: FilterOp = Field(description="operator")
    values: list[Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=list, max_length=MAX_TAG_VALUES, description="operand(s)"
    )

    @model_validator(mode="after")
    def _values_fit_op(self) -> TagFilter:
        self.tag = self.tag.strip().lower()
        if not self.tag:
            raise ValueError("tag must not be blank")
        if self.op in NO_VALUE_OPS and self.values:
            raise ValueError(f"{self.op} takes no values")
        if self.op not in NO_VALUE_OPS and not self.values:
            raise ValueError(f"{self.op} needs at least one value")
        if self.op in SINGLE_VALUE_OPS and len(self.values) != 1:
            raise ValueError(f"{self.op} takes exactly one value")
        if self.op in (FilterOp.GREATER_THAN, FilterOp.LESS_THAN):
            try:
                float(self.values[0])
            except ValueError:
                raise ValueError(f"{self.op} needs a numeric value") from None
        return self


Filters = Annotated[
    list[TagFilter],
    Field(max_length=MAX_RULES, description="all rules must pass (logical AND)"),
]


class TagFilterOut(BaseModel):
    """A stored tag rule (see the request shape for its meaning)."""

    tag: str
    op: FilterOp
    values: list[str] = Field(default_factory=list)


_UNLIMITED = "(null: unlimited)"


class CapsIn(InModel):
    """Caps of a create body; a call counts on its target, its groups and its publisher."""

    concurrency_cap: Cap | None = Field(None, description=f"calls in flight at once {_UNLIMITED}")
    hourly_cap: Cap | None = Field(None, description=f"calls per local clock hour {_UNLIMITED}")
    daily_cap: Cap | None = Field(None, description=f"calls per local day {_UNLIMITED}")
    monthly_cap: Cap | None = Field(
        None, description=f"calls per local calendar month {_UNLIMITED}"
    )
    lifetime_cap: Cap | None = Field(None, description=f"calls ever, the 'hard' cap {_UNLIMITED}")


class CapsPatch(PatchModel):
    """Caps of a PATCH body; `null` lifts a cap."""

    concurrency_cap: Cap | None = Field(UNSET, description=f"calls in flight at once {_UNLIMITED}")
    hourly_cap: Cap | None = Field(UNSET, description=f"calls per local clock hour {_UNLIMITED}")
    daily_cap: Cap | None = Field(UNSET, description=f"calls per local day {_UNLIMITED}")
    monthly_cap: Cap | None = Field(
        UNSET, description=f"calls per local calendar month {_UNLIMITED}"
    )
    lifetime_cap: Cap | None = Field(UNSET, description=f"calls ever, the 'hard' cap {_UNLIMITED}")


class CapsOut(OutModel):
    """Caps as stored; `null` is unlimited."""

    concurrency_cap: int | None
    hourly_cap: int | None
    daily_cap: int | None
    monthly_cap: int | None
    lifetime_cap: int | None
