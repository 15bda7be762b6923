"""The simulated traffic, drawn before the run: callers, what becomes of their reservations,
talk times. Pure: everything comes from the `Random` given."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from random import Random

from callbid.adapters.phone import to_e164

MAX_TALK_SECONDS = 4 * 3600
#: Legs a call tries at most (the server answers each unanswered one with the next).
MAX_LEGS = 8


@dataclass(frozen=True, slots=True)
class Region:
    """A state with area codes and ZIP codes of its own, so that ping tags agree."""

    state: str
    area_codes: tuple[str, ...]
    zips: tuple[str, ...]


REGIONS = (
    Region("NY", ("212", "718", "917", "646"), ("10001", "11201", "10451", "14604")),
    Region("NJ", ("201", "973", "732"), ("07030", "07102", "08901")),
    Region("CA", ("310", "415", "213"), ("90210", "94103", "90012")),
    Region("TX", ("214", "713", "512"), ("75201", "77002", "78701")),
    Region("IL", ("312", "773"), ("60601", "60614")),
    Region("FL", ("305", "407"), ("33101", "32801")),
)


class Fate(StrEnum):
    """What becomes of a reservation: no call, a call in time from the reserved caller, a call
    after it expired, or a call in time from another number."""

    NO_CALL = "no_call"
    ON_TIME = "on_time"
    LATE = "late"
    OTHER_CALLER = "other_caller"


@dataclass(frozen=True, slots=True)
class Caller:
    number: str
    zip_code: str
    state: str


@dataclass(frozen=True, slots=True)
class Traffic:
    """The shape of the traffic: shares are probabilities, talk times log-normal seconds."""

    pings: int = 200
    transfer_share: float = 0.7
    late_share: float = 0.1
    other_caller_share: float = 0.05
    no_answer_share: float = 0.05
    talk_median: float = 100.0
    talk_sigma: float = 0.6


@dataclass(frozen=True, slots=True)
class Script:
    """One publisher's caller, decided before the run: what to ping with and, once reserved,
    whether and how to call."""

    caller: Caller
    fate: Fate
    talk_seconds: int
    #: Where in the time left before `expires_at` an on-time call is placed (0 = at once).
    delay_share: float
    #: Legs that do not answer before one does (the carrier's `no-answer`).
    unanswered: int
    other: Caller | None = None


def draw_number(rng: Random, region: Region) -> str:
    """A valid NANP number (as `to_e164` checks it) in one of the region's area codes."""
    while True:
        exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
        if exchange[1:] == "11":
            continue
        candidate = f"+1{rng.choice(region.area_codes)}{exchange}{rng.randint(0, 9999):04d}"
        if to_e164(candidate) == candidate:
            return candidate


def draw_caller(rng: Random, taken: set[str]) -> Caller:
    """A caller whose number is not in `taken` (and is added to it)."""
    region = rng.choice(REGIONS)
    while (number := draw_number(rng, region)) in taken:
        pass
    taken.add(number)
    return Caller(number, rng.choice(region.zips), region.state)


def talk_seconds(rng: Random, median: float, sigma: float) -> int:
    """Whole seconds of talk, log-normal around `median`: between 1 and `MAX_TALK_SECONDS`."""
    drawn = rng.lognormvariate(math.log(median), sigma)
    return max(1, min(MAX_TALK_SECONDS, round(drawn)))


def draw_fate(rng: Random, traffic: Traffic) -> Fate:
    if rng.random() >= traffic.transfer_share:
        return Fate.NO_CALL
    late_or_other = rng.random()
    if late_or_other < traffic.late_share:
        return Fate.LATE
    if late_or_other < traffic.late_share + traffic.other_caller_share:
        return Fate.OTHER_CALLER
    return Fate.ON_TIME


def draw_scripts(rng: Random, traffic: Traffic) -> list[Script]:
    """One script per ping, callers' numbers all distinct (other callers' too)."""
    taken: set[str] = set()
    scripts = []
    for _ in range(traffic.pings):
        caller = draw_caller(rng, taken)
        fate = draw_fate(rng, traffic)
        unanswered = 0
        while unanswered < MAX_LEGS - 1 and rng.random() < traffic.no_answer_share:
            unanswered += 1
        scripts.append(
            Script(
                caller=caller,
                fate=fate,
                talk_seconds=talk_seconds(rng, traffic.talk_median, traffic.talk_sigma),
                delay_share=rng.random(),
                unanswered=unanswered,
                other=draw_caller(rng, taken) if fate is Fate.OTHER_CALLER else None,
            )
        )
    return scripts
