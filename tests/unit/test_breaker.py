"""Per-buyer circuit breakers: opening, cooldown, the single half-open probe, backoff."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from callbid.adapters.buyers.breaker import BreakerPolicy, Breakers

POLICY = BreakerPolicy(failures=3, cooldown_seconds=10.0, max_cooldown_seconds=35.0)


def opened(at: float = 0.0, key: str = "b") -> Breakers:
    breakers = Breakers(POLICY)
    for _ in range(POLICY.failures):
        breakers.record(key, False, at)
    return breakers


def test_unknown_buyer_is_closed_and_allowed() -> None:
    breakers = Breakers(POLICY)
    assert breakers.allow("b", 0.0)
    assert breakers.state("b") == "closed"
    assert breakers.states() == {}


def test_consecutive_failures_open_the_circuit() -> None:
    breakers = Breakers(POLICY)
    breakers.record("b", False, 0.0)
    breakers.record("b", False, 0.0)
    assert breakers.state("b") == "closed"
    breakers.record("b", False, 0.0)
    assert breakers.state("b") == "open"
    assert not breakers.allow("b", 9.9)
    assert breakers.states() == {"b": "open"}


def test_a_success_in_between_resets_the_count() -> None:
    breakers = Breakers(POLICY)
    for ok in (False, False, True, False, False):
        breakers.record("b", ok, 0.0)
    assert breakers.state("b") == "closed"


def test_after_cooldown_exactly_one_probe() -> None:
    breakers = opened()
    assert breakers.allow("b", 10.0)
    assert breakers.state("b") == "half_open"
    assert not breakers.allow("b", 10.0)
    assert not breakers.allow("b", 1000.0)


def test_successful_probe_closes() -> None:
    breakers = opened()
    assert breakers.allow("b", 10.0)
    breakers.record("b", True, 10.1)
    assert breakers.state("b") == "closed"
    assert breakers.cooldown("b") == 0.0
    assert all(breakers.allow("b", 10.2) for _ in range(5))


def test_failed_probe_reopens_with_doubled_cooldown_up_to_max() -> None:
    breakers = opened()
    now = 0.0
    for expected in (20.0, 35.0, 35.0):
        now += breakers.cooldown("b")
        assert breakers.allow("b", now)
        breakers.record("b", False, now)
        assert breakers.state("b") == "open"
        assert breakers.cooldown("b") == expected
        assert not breakers.allow("b", now + expected - 0.1)


def test_released_probe_lets_another_through() -> None:
    breakers = opened()
    assert breakers.allow("b", 10.0)
    breakers.release("b")
    assert breakers.state("b") == "open"
    assert breakers.allow("b", 10.0)


def test_buyers_are_independent() -> None:
    breakers = opened(key="a")
    assert breakers.allow("b", 0.0)
    assert breakers.states() == {"a": "open"}


@pytest.mark.parametrize(
    ("failures", "cooldown", "max_cooldown"), [(0, 10.0, 300.0), (5, 0.0, 300.0), (5, 10.0, 5.0)]
)
def test_policy_rejects_nonsense(failures: int, cooldown: float, max_cooldown: float) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        BreakerPolicy(failures, cooldown, max_cooldown)


class BreakerMachine(RuleBasedStateMachine):
    """Calls let through, settled in any order, with time moving on: at most one call is
    let through while the circuit is not closed until that call is settled, an open circuit
    never lets a call through before its cooldown, and a closed one always does."""

    def __init__(self) -> None:
        super().__init__()
        self.breakers = Breakers(POLICY)
        self.now = 0.0
        self.in_flight = 0
        self.probes = 0
        self.opened_at = 0.0

    @rule(seconds=st.floats(min_value=0.0, max_value=40.0))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def ask(self) -> None:
        before = self.breakers.state("b")
        allowed = self.breakers.allow("b", self.now)
        if before == "closed":
            assert allowed
        if before == "open" and self.now < self.opened_at + self.breakers.cooldown("b"):
            assert not allowed
        if allowed:
            self.in_flight += 1
            self.probes += before != "closed"

    @precondition(lambda self: self.in_flight > 0)
    @rule(ok=st.booleans(), released=st.booleans())
    def settle(self, ok: bool, released: bool) -> None:
        self.in_flight -= 1
        was = self.breakers.state("b")
        if released:
            self.breakers.release("b")
        else:
            self.breakers.record("b", ok, self.now)
        if not released and self.breakers.state("b") == "open" and was != "open":
            self.opened_at = self.now
        if was == "half_open":
            self.probes = 0

    @invariant()
    def one_probe_at_a_time(self) -> None:
        assert self.probes <= 1
        if self.breakers.state("b") == "half_open":
            assert self.probes == 1

    @invariant()
    def cooldown_within_policy(self) -> None:
        cooldown = self.breakers.cooldown("b")
        assert cooldown == 0.0 or POLICY.cooldown_seconds <= cooldown <= POLICY.max_cooldown_seconds


BreakerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40)
test_breaker_machine = BreakerMachine.TestCase
