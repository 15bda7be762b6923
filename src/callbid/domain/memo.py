"""Memoisation of a campaign snapshot's derived facts, so a ping recomputes only what its own
request changes. Pure in effect: a memo answers exactly what the function it caches would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from callbid.domain.model import Campaign, PingRequest, Publisher, Target
from callbid.domain.reserve import Candidate, CapSubject, publisher_subject, target_subjects

if TYPE_CHECKING:
    from callbid.domain.decide import Assessment

#: Every zone's UTC offset is a multiple of 15 minutes, so local hour, day and month buckets
#: cannot change inside one quarter hour of UTC; business hours are in whole minutes.
SUBJECT_SLOT_SECONDS = 900
ASSESSMENT_SLOT_SECONDS = 60
MAX_ENTRIES = 4096


class PlanMemo:
    """Cap subjects and candidates per target and quarter hour, publisher subjects per
    publisher and quarter hour, and assessments per minute, publisher and the values of the
    tags any rule of the campaign reads (plus the caller when a caller list is in play).
    Bounded: a full table is emptied."""

    def __init__(self, campaign: Campaign) -> None:
        self._campaign = campaign
        self._subjects: dict[tuple[int, int], tuple[CapSubject, ...]] = {}
        self._candidates: dict[tuple[int, int, tuple[float | None, ...]], Candidate] = {}
        self._publishers: dict[tuple[str, int], CapSubject | None] = {}
        self._assessments: dict[tuple[Any, ...], Assessment] = {}
        rules = [r for t in campaign.targets for r in t.rules] + [
            r for c in campaign.criteria for r in c.rules
        ]
        self._tags = tuple(sorted({r.tag for r in rules}))
        self._by_caller = any(t.caller_list is not None for t in campaign.targets)

    def subjects(self, target: Target, stamp: float, now: datetime) -> tuple[CapSubject, ...]:
        key = (target.id, int(stamp // SUBJECT_SLOT_SECONDS))
        found = self._subjects.get(key)
        if found is None:
            if len(self._subjects) >= MAX_ENTRIES:
                self._subjects.clear()
            found = self._subjects[key] = target_subjects(target, self._campaign.groups, now)
        return found

    def candidate(
        self, target: Target, stamp: float, now: datetime, payouts: tuple[float | None, ...]
    ) -> Candidate:
        key = (target.id, int(stamp // SUBJECT_SLOT_SECONDS), payouts)
        found = self._candidates.get(key)
        if found is None:
            if len(self._candidates) >= MAX_ENTRIES:
                self._candidates.clear()
            subjects = self.subjects(target, stamp, now)
            found = Candidate(target.id, subjects, target.dedupe_seconds, payouts)
            self._candidates[key] = found
        return found

    def publisher_subject(
        self, publisher: Publisher, stamp: float, now: datetime
    ) -> CapSubject | None:
        key = (publisher.publisher_id, int(stamp // SUBJECT_SLOT_SECONDS))
        if key in self._publishers:
            return self._publishers[key]
        if len(self._publishers) >= MAX_ENTRIES:
            self._publishers.clear()
        found = self._publishers[key] = publisher_subject(publisher, now)
        return found

    def assessment(
        self,
        request: PingRequest,
        publisher: Publisher,
        stamp: float,
        compute: Callable[[], Assessment],
    ) -> Assessment:
        tags = request.tags
        key = (
            int(stamp // ASSESSMENT_SLOT_SECONDS),
            publisher.publisher_id,
            request.caller_number if self._by_caller else None,
            *(tags.get(tag) for tag in self._tags),
        )
        found = self._assessments.get(key)
        if found is None:
            if len(self._assessments) >= MAX_ENTRIES:
                self._assessments.clear()
            found = self._assessments[key] = compute()
        return found
