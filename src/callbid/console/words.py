"""Decision log outcomes in plain words, for an owner who does not read codes."""

from __future__ import annotations

CAPS = {
    "concurrency": "concurrent calls",
    "hourly": "calls this hour",
    "daily": "calls today",
    "monthly": "calls this month",
    "lifetime": "calls in all",
    "life": "calls in all",
}

EXACT = {
    "selected": "Chosen: this buyer was reserved for the call",
    "eligible": "Eligible: open, matching and under its caps",
    "paused": "Paused by the owner",
    "closed": "Closed: outside its hours of operation",
    "filtered:caller_list": "Filtered out by its caller list",
    "duplicate": "Refused: this caller was reserved recently (duplicate caller)",
    "publisher_capped": "Not tried: the publisher has reached its cap",
    "unpriced": "Not tried: the payout cannot be known until the call converts",
    "not_reached": "Not reached: a target ahead of it in the order was chosen first",
    "outbid": "Outbid: another buyer bid more",
    "ping_accepted": "The buyer accepted",
    "ping_declined": "The buyer declined the ping",
    "ping_error": "The buyer's answer failed or could not be read",
    "ping_timeout": "The buyer did not answer before the deadline",
    "ping_skipped": "Not pinged: the buyer's endpoint is failing (circuit breaker open)",
    "would_ping": "Would be pinged: buyers are not pinged in a replay",
}


def describe_outcome(outcome: str | None) -> str:
    """What a decision log outcome (`closed`, `capped:group-3:daily`, `filtered:…`) means."""
    if outcome is None:
        return "—"
    if outcome in EXACT:
        return EXACT[outcome]
    if outcome.startswith("capped:"):
        *subject, cap = outcome.removeprefix("capped:").split(":")
        what = CAPS.get(cap, cap)
        whose = f" of {subject[0]}" if subject else ""
        return f"At its cap: the limit on {what}{whose} is reached"
    if outcome.startswith("filtered:"):
        return f"Filtered out: the lead's tags fail the rule {outcome.removeprefix('filtered:')}"
    return outcome.replace("_", " ").capitalize()
