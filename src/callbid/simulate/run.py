"""A run of `callbid simulate`: publishers ping at a steady rate, a share of the reserved callers
call through the carrier, and once every reservation has expired the server's report is read
and compared with the simulator's own totals."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, TextIO

import httpx

from callbid.domain.model import ConversionCriterion
from callbid.simulate.carrier import Carrier, new_sid
from callbid.simulate.tally import Expected, compare, criteria_of, render_table
from callbid.simulate.traffic import Caller, Fate, Script, Traffic, draw_scripts


class SimulationError(Exception):
    """The run could not start or finish (server unreachable, credentials refused)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    key: str
    publisher_id: str
    admin_token: str
    carrier_token: str
    #: Where `carrier_token` came from (`--carrier-token`, the local demo), named in a 403.
    carrier_token_source: str = "from --carrier-token"


@dataclass(frozen=True, slots=True)
class Options:
    """A run: where, as whom, what traffic, how fast, and how long to wait for the server."""

    url: str
    credentials: Credentials
    traffic: Traffic = field(default_factory=Traffic)
    concurrency: int = 10
    #: Pings started per second; 0: as fast as `concurrency` allows.
    rate: float = 100.0
    seed: int | None = None
    #: An on-time call is placed at least this long before `expires_at`.
    on_time_margin: float = 1.0
    #: A late call waits until this long after `expires_at`.
    late_margin: float = 1.0
    #: After the last reservation expired: time for the server's sweeper to run.
    sweep_wait: float = 1.5
    #: How long a report that disagrees is read again (the server writes in batches).
    settle: float = 5.0


@dataclass(frozen=True, slots=True)
class Transfer:
    """A call placed for a reservation: the ping's answer, who called, how long they talked."""

    answer: Mapping[str, Any]
    caller: Caller
    talk: int | None


@dataclass(slots=True)
class Outcome:
    """A run's result. `notes`: `late_instead`, on-time calls that could only be placed late;
    `boundary`, on-time calls the server answered after `expires_at`, counted as the server
    recorded their reservation."""

    since: datetime
    until: datetime
    expected: dict[str, Any]
    server: dict[str, Any]
    matches: dict[str, bool]
    errors: dict[str, int]
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def match(self) -> bool:
        return all(self.matches.values())

    def as_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {name: count for name, count in self.notes.items() if count}
        if self.errors:
            extra["errors"] = self.errors
        return {**self.expected, "server": self.server, "match": self.match} | extra

    def as_text(self) -> str:
        period = f"{iso(self.since)} .. {iso(self.until)}"
        lines = [
            f"callbid simulate: {period}",
            render_table(self.expected, self.server, self.matches),
        ]
        if self.notes.get("late_instead"):
            lines.append(f"{self.notes['late_instead']} on-time calls were delayed, placed late")
        if self.notes.get("boundary"):
            lines.append(
                f"{self.notes['boundary']} on-time calls were answered after expires_at: "
                "counted as the server recorded their reservation"
            )
        lines += [f"error: {what} x{count}" for what, count in sorted(self.errors.items())]
        lines.append("every column matches" if self.match else "MISMATCH")
        return "\n".join(lines)


def caller_tags(caller: Caller) -> dict[str, str]:
    """The tags the server gives a call that claimed nothing, as far as the simulator knows
    them: the carrier's look-up of the caller and what the caller's number says."""
    return {
        "caller_zip": caller.zip_code,
        "caller_state": caller.state,
        "caller_country": "US",
        "caller_number": caller.number,
        "caller_area_code": caller.number[2:5],
    }


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Progress:
    """One status line on `stream`: redrawn in place on a terminal, phase changes only
    elsewhere."""

    def __init__(self, stream: TextIO, pings: int, *, live: bool | None = None) -> None:
        self.stream = stream
        self.pings = pings
        self.pinged = 0
        self.calls_started = 0
        self.calls_done = 0
        self.phase = ""
        self.live = stream.isatty() if live is None else live

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        if not self.live:
            print(f"callbid simulate: {phase}", file=self.stream, flush=True)

    def line(self) -> str:
        done, total = self.pinged + self.calls_done, self.pings + self.calls_started
        filled = 30 * done // total if total else 30
        return (
            f"[{'#' * filled}{'.' * (30 - filled)}] pings {self.pinged}/{self.pings}"
            f"  calls {self.calls_done}/{self.calls_started}  {self.phase}"
        )

    async def animate(self, every: float = 0.1) -> None:
        while self.live:
            self.draw()
            await asyncio.sleep(every)

    def draw(self) -> None:
        self.stream.write("\r\x1b[K" + self.line())
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()


class Simulation:
    """One run against one server through one HTTP client."""

    def __init__(
        self,
        options: Options,
        client: httpx.AsyncClient,
        progress: Progress,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.options = options
        self.base = options.url.rstrip("/")
        self.client = client
        self.progress = progress
        self.clock = clock
        self.expected = Expected()
        self.criteria: list[ConversionCriterion] = []
        self.pings = asyncio.Semaphore(options.concurrency)
        self.calls = asyncio.Semaphore(options.concurrency)
        self.last_expiry: datetime | None = None
        self.late_instead = 0
        self.boundary: list[Transfer] = []
        self.carrier = Carrier(
            client,
            options.url,
            options.credentials.carrier_token,
            new_sid("AC"),
            self.expected.error,
            clock,
            token_source=options.credentials.carrier_token_source,
        )
        self.scripts = draw_scripts(Random(options.seed), options.traffic)

    async def run(self) -> Outcome:
        """Ping, call, wait for every reservation to expire, then compare with the report."""
        campaign_id = await self._load_campaign()
        since = self.clock()
        self.progress.set_phase("pinging and calling")
        await asyncio.gather(*(self._publisher(i, s) for i, s in enumerate(self.scripts)))
        until = self.clock() + timedelta(milliseconds=1)
        await self._wait_for_expiry()
        self.progress.set_phase("reading revenue and the server's report")
        await self._settle_boundary()
        await self._read_revenue()
        expected = self.expected.totals()
        server, matches = await self._settled_report(expected, since, until, campaign_id)
        notes = {"late_instead": self.late_instead, "boundary": len(self.boundary)}
        return Outcome(since, until, expected, server, matches, dict(self.expected.errors), notes)

    async def _admin(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.options.credentials.admin_token}"}
        try:
            response = await self.client.get(self.base + path, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise SimulationError(f"cannot reach {self.base}: {exc!r}") from None
        if response.status_code != 200:
            raise SimulationError(f"GET {path}: {response.status_code} {response.text[:200]}")
        return response.json()

    async def _load_campaign(self) -> int:
        key = await self._admin(f"/api/v1/rtb-keys/{self.options.credentials.key}")
        campaign_id = int(key["campaign_id"])
        rows = await self._admin("/api/v1/conversion-criteria", campaign_id=campaign_id)
        self.criteria = criteria_of(rows)
        return campaign_id

    async def _publisher(self, index: int, script: Script) -> None:
        if self.options.rate > 0:
            await asyncio.sleep(index / self.options.rate)
        async with self.pings:
            answer = await self._ping(script.caller)
        self.progress.pinged += 1
        if answer is None or answer.get("status") != "reserved":
            return
        if answer.get("retreaver_ping_shield"):
            self.expected.pings -= 1  # the server keeps the first answer, no new request
            self.expected.error("ping shielded: the caller had a live reservation already")
            return
        self.expected.reserved += 1
        expires = parse_iso(str(answer["expires_at"]))
        self.last_expiry = max(expires, self.last_expiry or expires)
        if script.fate is not Fate.NO_CALL:
            await self._transfer(script, answer, expires)

    async def _ping(self, caller: Caller) -> dict[str, Any] | None:
        self.expected.pings += 1
        form = {
            "key": self.options.credentials.key,
            "publisher_id": self.options.credentials.publisher_id,
            "caller_number": caller.number,
            "caller_zip": caller.zip_code,
        }
        try:
            response = await self.client.post(f"{self.base}/rtbs.json", data=form)
        except httpx.TransportError as exc:
            self.expected.error(f"POST /rtbs.json {type(exc).__name__}")
            return None
        if response.status_code != 200:
            self.expected.error(f"POST /rtbs.json {response.status_code}")
            return None
        body: dict[str, Any] = response.json()
        return body

    async def _transfer(self, script: Script, answer: Mapping[str, Any], expires: datetime) -> None:
        """Call the reservation's number as the script says; a call meant to be on time that
        could only be placed too near `expires_at` is placed late instead (and counted so)."""
        caller = script.other or script.caller
        late = script.fate is Fate.LATE
        self.progress.calls_started += 1
        while True:
            await self._until_due(late, script.delay_share, expires)
            async with self.calls:
                if late or self._on_time(expires):
                    dialled = str(answer["inbound_number"])
                    placed = await self.carrier.place_call(caller, dialled, script)
                    break
            late = True
            self.late_instead += 1
        call = Transfer(answer, caller, placed.talk)
        if script.fate is not Fate.ON_TIME or late:
            self._unmatched(call)
        elif placed.answered_at is not None and placed.answered_at >= expires:
            self.boundary.append(call)  # the server may have seen it after expires_at
        else:
            self.expected.record_claimed_call(answer, placed.talk)
        self.progress.calls_done += 1

    def _unmatched(self, call: Transfer) -> None:
        self.expected.record_unmatched_call(self.criteria, caller_tags(call.caller), call.talk)

    async def _settle_boundary(self) -> None:
        """Calls sent in time but answered after `expires_at` count as the server recorded
        their reservation: claimed or not."""

        async def settle(call: Transfer) -> None:
            async with self.pings:
                try:
                    row = await self._admin(f"/call_reservations/{call.answer['uuid']}")
                except SimulationError:
                    self.expected.error("owner look-up failed")
                    row = {}
            if row.get("claimed_at"):
                self.expected.record_claimed_call(call.answer, call.talk)
            else:
                self._unmatched(call)

        await asyncio.gather(*(settle(call) for call in self.boundary))

    def _on_time(self, expires: datetime) -> bool:
        guard = timedelta(seconds=self.options.on_time_margin / 2)
        return self.clock() < expires - guard

    async def _until_due(self, late: bool, share: float, expires: datetime) -> None:
        left = (expires - self.clock()).total_seconds()
        if late:
            await asyncio.sleep(max(0.0, left + self.options.late_margin))
        else:
            await asyncio.sleep(max(0.0, left - self.options.on_time_margin) * share)

    async def _wait_for_expiry(self) -> None:
        if self.last_expiry is None:
            return
        left = (self.last_expiry - self.clock()).total_seconds() + self.options.sweep_wait
        if left > 0:
            self.progress.set_phase(f"waiting {left:.1f} s for reservations to expire")
            await asyncio.sleep(left)

    async def _read_revenue(self) -> None:
        async def revenue_of(uuid: str) -> float:
            async with self.pings:
                try:
                    body = await self._admin(f"/call_reservations/{uuid}")
                except SimulationError:
                    self.expected.error("owner look-up failed")
                    return 0.0
            return float(body.get("revenue") or 0.0)

        found = await asyncio.gather(*(revenue_of(u) for u in self.expected.converted))
        self.expected.revenue += sum(found)

    async def _settled_report(
        self, expected: dict[str, Any], since: datetime, until: datetime, campaign_id: int
    ) -> tuple[dict[str, Any], dict[str, bool]]:
        params = {"since": iso(since), "until": iso(until), "campaign_id": campaign_id}
        deadline = time.monotonic() + self.options.settle
        while True:
            server: dict[str, Any] = await self._admin("/api/v1/reports/summary", **params)
            matches = compare(expected, server)
            if all(matches.values()) or time.monotonic() >= deadline:
                return server, matches
            await asyncio.sleep(0.5)


async def simulate(
    options: Options,
    stream: TextIO = sys.stderr,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    live: bool | None = None,
) -> Outcome:
    """Run the simulation against `options.url` (through `transport` when given: tests).

    Raises SimulationError when the server cannot be reached or refuses the credentials."""
    connections = 2 * options.concurrency
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(30.0, pool=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, transport=transport) as client:
        progress = Progress(stream, options.traffic.pings, live=live)
        animation = asyncio.create_task(progress.animate())
        try:
            return await Simulation(options, client, progress).run()
        finally:
            animation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await animation
            progress.close()
