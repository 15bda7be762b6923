from __future__ import annotations

import time
import uuid

from callbid.ids import new_id


def test_ids_are_canonical_rfc_9562_version_7() -> None:
    made = new_id()
    parsed = uuid.UUID(made)
    assert str(parsed) == made
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_carry_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid.UUID(new_id())
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after


def test_successive_ids_sort_in_creation_order_and_never_repeat() -> None:
    # Many fall in the same millisecond: their order then comes from the generator's counter.
    made = [new_id() for _ in range(20_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
