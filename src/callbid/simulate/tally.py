"""What the server should report for a run, and the comparison with what it did report."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from callbid.domain.conversion import EndedCall, convert
from callbid.domain.model import ConversionCriterion, FilterOp, PayoutKind, TagRule

#: The table's columns, in order: what the simulator and the server both count.
COLUMNS = ("pings", "reserved", "claimed", "expired", "calls", "conversions", "payout", "revenue")
MONEY = frozenset({"payout", "revenue"})
#: Two sums of the same amounts, each rounded to cents, may differ by a cent.
MONEY_TOLERANCE = 0.01 + 1e-9


@dataclass(slots=True)
class Expected:
    """What the server should report for the run, from what the simulator sent and saw."""

    pings: int = 0
    reserved: int = 0
    claimed: int = 0
    wiped: int = 0
    calls: int = 0
    conversions: int = 0
    payout: float = 0.0
    revenue: float = 0.0
    #: Reservations whose call converted: their revenue is read from the owner look-up.
    converted: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def expired(self) -> int:
        return self.reserved - self.claimed - self.wiped

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def record_claimed_call(self, answer: Mapping[str, Any], talk: int | None) -> None:
        """A call in time from the reserved caller: it claims; it converts when its talk
        reached the answer's `retreaver_seconds` (None: it never connected)."""
        self.calls += 1
        self.claimed += 1
        if talk is not None and talk >= int(answer.get("retreaver_seconds") or 0):
            self.conversions += 1
            self.payout += float(answer.get("retreaver_payout") or 0.0)
            self.converted.append(str(answer["uuid"]))

    def record_unmatched_call(
        self, criteria: Sequence[ConversionCriterion], tags: Mapping[str, str], talk: int | None
    ) -> None:
        """A call that claims nothing: it converts only by a criterion paying any publisher."""
        self.calls += 1
        if talk is None:
            return
        ended = EndedCall(publisher_id="", tags=tags, connected_seconds=talk, ended_at=time.time())
        outcome = convert(tuple(criteria), ended)
        if outcome.converted:
            self.conversions += 1
            self.payout += outcome.payout
            self.revenue += outcome.revenue

    def totals(self) -> dict[str, Any]:
        return {
            "pings": self.pings,
            "reserved": self.reserved,
            "claimed": self.claimed,
            "expired": self.expired,
            "calls": self.calls,
            "conversions": self.conversions,
            "payout": round(self.payout, 2),
            "revenue": round(self.revenue, 2),
        }


def criteria_of(rows: Sequence[Mapping[str, Any]]) -> list[ConversionCriterion]:
    """The admin API's conversion criteria (`GET /api/v1/conversion-criteria`), in order."""
    ordered = sorted(rows, key=lambda row: (row.get("position", 0), row["id"]))
    return [
        ConversionCriterion(
            id=row["id"],
            name=row.get("name", ""),
            publisher_id=row.get("publisher_id"),
            payout_kind=PayoutKind(row.get("payout_kind", "fixed")),
            payout=float(row.get("payout", 0.0)),
            revenue=float(row.get("revenue", 0.0)),
            buffer_seconds=int(row.get("buffer_seconds", 0)),
            rules=tuple(
                TagRule(rule["tag"], FilterOp(rule["op"]), tuple(rule.get("values", ())))
                for rule in row.get("conditions", ())
            ),
            dedupe_seconds=int(row.get("dedupe_seconds", 0)),
        )
        for row in ordered
    ]


def compare(expected: Mapping[str, Any], server: Mapping[str, Any]) -> dict[str, bool]:
    """Column by column: counts must be equal, money within a cent."""
    matches = {}
    for column in COLUMNS:
        mine, theirs = expected.get(column), server.get(column)
        if column in MONEY and isinstance(mine, int | float) and isinstance(theirs, int | float):
            matches[column] = abs(mine - theirs) <= MONEY_TOLERANCE
        else:
            matches[column] = mine == theirs
    return matches


def render_table(
    expected: Mapping[str, Any], server: Mapping[str, Any], matches: Mapping[str, bool]
) -> str:
    """The comparison as a plain text table, one row per column."""
    rows = [("", "simulator", "server", "match")]
    for column in COLUMNS:
        rows.append(
            (
                column,
                _cell(expected.get(column)),
                _cell(server.get(column)),
                "yes" if matches[column] else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value is None else str(value)
