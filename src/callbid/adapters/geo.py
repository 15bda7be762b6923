"""US ZIP code facts from the `zipcodes` package's bundled data (no download at run time)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import zipcodes


@dataclass(frozen=True, slots=True)
class ZipInfo:
    state: str
    city: str
    timezone: str


@lru_cache(maxsize=1)
def zip_index() -> dict[str, ZipInfo]:
    """Every ZIP code in the package, indexed once per process (about 0.3 s, 42k entries):
    `zipcodes.matching` scans its list on every call, too slow for a ping."""
    index: dict[str, ZipInfo] = {}
    entries: list[dict[str, object]] = zipcodes.list_all()  # type: ignore[no-untyped-call]
    for entry in entries:
        index[str(entry["zip_code"])] = ZipInfo(
            state=str(entry.get("state") or ""),
            city=str(entry.get("city") or ""),
            timezone=str(entry.get("timezone") or ""),
        )
    return index


def lookup_zip(code: str) -> ZipInfo | None:
    """Facts of a 5-digit ZIP (ZIP+4 accepted), None when unknown or malformed."""
    five = code.strip()[:5]
    if len(five) != 5 or not five.isdigit():
        return None
    return zip_index().get(five)
