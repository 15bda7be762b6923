"""The links an owner hands a publisher: the RTB link and the legacy Call Reservation link of a
key, with the publisher's id and the tags it should send. Pure."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from callbid.domain.errors import InvalidInput

#: What a publisher's system replaces with the caller's number (Retreaver's placeholder).
CALLER_TOKEN = "[caller_number]"
#: What the sample `curl` sends in place of each placeholder.
SAMPLES = {
    "caller_number": "+12125550123",
    "caller_zip": "10001",
    "caller_state": "NY",
    "caller_city": "New York",
}
_TAG_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


@dataclass(frozen=True, slots=True)
class Links:
    rtb: str
    legacy: str
    curl: str


def parse_tags(text: str) -> list[tuple[str, str]]:
    """`name=value` lines (a bare `name` or an empty value becomes the `[name]` placeholder);
    InvalidInput naming the first bad line."""
    tags = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        name, _, value = line.partition("=")
        name = name.strip()
        if not _TAG_NAME.match(name) or name in ("key", "publisher_id", "caller_number"):
            raise InvalidInput(
                f"tags: line {number}: {name!r} is not a tag name (letters, digits, _ . -)"
            )
        tags.append((name, value.strip() or f"[{name}]"))
    return tags


def _query(key: str, publisher_id: str, tags: Sequence[tuple[str, str]]) -> str:
    # Placeholders stay readable (`[caller_zip]`): a publisher's system substitutes them.
    pairs = [("key", key), ("publisher_id", publisher_id), ("caller_number", CALLER_TOKEN), *tags]
    return "&".join(f"{quote(name)}={quote(value, safe='[]')}" for name, value in pairs)


def build_links(
    base_url: str, key: str, publisher_id: str, tags: Sequence[tuple[str, str]] = ()
) -> Links:
    """The links of `key` for `publisher_id` on the service at `base_url`; InvalidInput for a
    missing or unusable publisher id."""
    publisher_id = publisher_id.strip()
    if not publisher_id or len(publisher_id) > 100:
        raise InvalidInput("publisher_id: pick a publisher or type its id (up to 100 characters)")
    base = base_url.rstrip("/")
    query = _query(key, publisher_id, tags)
    rtb = f"{base}/rtbs.json?{query}"
    filled = [(n, SAMPLES.get(n, "test") if v == f"[{n}]" else v) for n, v in tags]
    sample = f"{base}/rtbs.json?" + _query(key, publisher_id, filled).replace(
        quote(CALLER_TOKEN, safe="[]"), quote(SAMPLES["caller_number"])
    )
    return Links(
        rtb=rtb,
        legacy=f"{base}/call_reservations.json?{query}",
        curl=f"curl -s -X POST {shlex.quote(sample)}",
    )
