"""Tag filters: does a request's tag set satisfy a rule (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from callbid.domain.model import FilterOp, TagRule


def matches(rule: TagRule, tags: Mapping[str, str]) -> bool:
    """Apply one rule. Text comparisons ignore case and surrounding blanks; numeric operators
    fail on a missing or non-numeric tag; negative operators pass on a missing tag."""
    raw = tags.get(rule.tag)
    op = rule.op
    if op is FilterOp.EXISTS:
        return raw is not None and raw.strip() != ""
    if op is FilterOp.NOT_EXISTS:
        return raw is None or raw.strip() == ""
    if raw is None:
        return op in (FilterOp.NOT_EQUALS, FilterOp.NOT_IN)
    value = raw.strip().casefold()
    wanted = [v.strip().casefold() for v in rule.values]
    if op is FilterOp.EQUALS:
        return bool(wanted) and value == wanted[0]
    if op is FilterOp.NOT_EQUALS:
        return not wanted or value != wanted[0]
    if op is FilterOp.IN:
        return value in wanted
    if op is FilterOp.NOT_IN:
        return value not in wanted
    if op is FilterOp.BEGINS_WITH:
        return any(value.startswith(w) for w in wanted)
    if op is FilterOp.CONTAINS:
        return any(w in value for w in wanted)
    return _compare(op, value, wanted)


def _compare(op: FilterOp, value: str, wanted: list[str]) -> bool:
    try:
        left, right = float(value), float(wanted[0])
    except (ValueError, IndexError):
        return False
    if op is FilterOp.GREATER_THAN:
        return left > right
    return left < right


def first_failing(rules: Iterable[TagRule], tags: Mapping[str, str]) -> TagRule | None:
    """The first rule the tags do not satisfy, or None when all pass."""
    return next((r for r in rules if not matches(r, tags)), None)
