"""Per-buyer circuit breakers: stop pinging a buyer that keeps failing, probe it again later.

Pure: no I/O and no clock of its own, `now` (monotonic seconds) is passed in. A buyer that
declines has answered, so that is a success; errors and timeouts are failures.

States: `closed` lets every call through; `failures` consecutive failures open the circuit;
`open` refuses calls until its cooldown has passed, then lets exactly one probe through and is
`half_open` while that probe is out. The probe's success closes the circuit; its failure opens
it again with the cooldown doubled, up to `max_cooldown_seconds`.

Every call that `allow` let through must be settled with `record` (it had an outcome) or
`release` (it was never sent), otherwise a half-open circuit keeps waiting for its probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a circuit opens (`failures` in a row) and for how long (doubling per failed
    probe, from `cooldown_seconds` up to `max_cooldown_seconds`)."""

    failures: int = 5
    cooldown_seconds: float = 10.0
    max_cooldown_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("failures must be at least 1")
        if not 0 < self.cooldown_seconds <= self.max_cooldown_seconds:
            raise ValueError("need 0 < cooldown_seconds <= max_cooldown_seconds")


@dataclass(slots=True)
class _Circuit:
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    cooldown: float = 0.0


class Breakers:
    """One circuit per key (a buyer), created on first use."""

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self._circuits: dict[str, _Circuit] = {}

    def allow(self, key: str, now: float) -> bool:
        """Whether a call to `key` may go out now. True moves an open circuit whose cooldown
        has passed to half-open: the caller's call is the probe."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.state is CircuitState.CLOSED:
            return True
        if circuit.state is CircuitState.HALF_OPEN or now < circuit.opened_at + circuit.cooldown:
            return False
        circuit.state = CircuitState.HALF_OPEN
        return True

    def record(self, key: str, ok: bool, now: float) -> None:
        """Settle a call with its outcome: `ok` (the buyer answered) closes the circuit and
        resets it; a failure counts towards opening it, or re-opens a half-open one."""
        circuit = self._circuits.setdefault(key, _Circuit())
        if ok:
            circuit.state, circuit.failures, circuit.cooldown = CircuitState.CLOSED, 0, 0.0
        elif circuit.state is CircuitState.HALF_OPEN:
            self._open(circuit, now, min(circuit.cooldown * 2, self.policy.max_cooldown_seconds))
        elif circuit.state is CircuitState.CLOSED:
            circuit.failures += 1
            if circuit.failures >= self.policy.failures:
                self._open(circuit, now, self.policy.cooldown_seconds)

    def release(self, key: str) -> None:
        """Settle a call that was let through but never sent: a half-open circuit may probe
        again."""
        circuit = self._circuits.get(key)
        if circuit is not None and circuit.state is CircuitState.HALF_OPEN:
            circuit.state = CircuitState.OPEN

    def forget(self, key: str) -> None:
        """Drop `key`'s circuit (a one-off caller's, e.g. a trial ping)."""
        self._circuits.pop(key, None)

    def state(self, key: str) -> str:
        """`closed`, `open` or `half_open` (a probe is out). An open circuit whose cooldown has
        passed stays `open` until a call asks to go through."""
        circuit = self._circuits.get(key)
        return str(circuit.state if circuit else CircuitState.CLOSED)

    def states(self) -> dict[str, str]:
        """Every known key's state, for metrics."""
        return {key: str(circuit.state) for key, circuit in self._circuits.items()}

    def cooldown(self, key: str) -> float:
        """The current cooldown of `key`'s circuit (0 while it is closed)."""
        circuit = self._circuits.get(key)
        return circuit.cooldown if circuit else 0.0

    @staticmethod
    def _open(circuit: _Circuit, now: float, cooldown: float) -> None:
        circuit.state, circuit.opened_at, circuit.cooldown = CircuitState.OPEN, now, cooldown
        circuit.failures = 0
