"""`callbid simulate`'s parts: the drawn traffic, TwiML and signatures, the expected totals,
and whole runs against a fake server through `httpx.MockTransport`."""

from __future__ import annotations

import asyncio
import io
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator

from callbid.adapters.phone import to_e164
from callbid.adapters.telephony.twilio import is_signed
from callbid.cli import main
from callbid.simulate.carrier import Carrier, Dial, parse_twiml, sign
from callbid.simulate.run import (
    Credentials,
    Options,
    Progress,
    SimulationError,
    caller_tags,
    simulate,
)
from callbid.simulate.tally import Expected, compare, criteria_of, render_table
from callbid.simulate.traffic import (
    MAX_TALK_SECONDS,
    REGIONS,
    Caller,
    Fate,
    Script,
    Traffic,
    draw_fate,
    draw_scripts,
    talk_seconds,
)

TOKEN = "carrier-secret"
BASE = "http://callbid.test"
DIAL = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Dial timeout="30" action="{base}/twilio/dial?line=%2B18885550100" method="POST">'
    '<Number statusCallbackEvent="answered" statusCallback="{base}/twilio/leg?line=%2B18885550100"'
    ' statusCallbackMethod="POST">{number}</Number></Dial></Response>'
)
HANGUP = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Sorry</Say><Hangup/></Response>'


# --- traffic --------------------------------------------------------------------------------


def test_scripts_have_distinct_valid_callers_from_the_regions() -> None:
    scripts = draw_scripts(Random(3), Traffic(pings=500, other_caller_share=0.3))
    numbers = [s.caller.number for s in scripts] + [s.other.number for s in scripts if s.other]
    assert len(set(numbers)) == len(numbers)
    assert all(to_e164(number) == number for number in numbers)
    regions = {region.state: region for region in REGIONS}
    for script in scripts:
        region = regions[script.caller.state]
        assert script.caller.number[2:5] in region.area_codes
        assert script.caller.zip_code in region.zips
        assert (script.other is not None) == (script.fate is Fate.OTHER_CALLER)
    assert {s.caller.state for s in scripts} == set(regions)


def test_scripts_replay_with_a_seed() -> None:
    traffic = Traffic(pings=50)
    assert draw_scripts(Random(9), traffic) == draw_scripts(Random(9), traffic)
    assert draw_scripts(Random(9), traffic) != draw_scripts(Random(10), traffic)


def test_fates_follow_the_shares() -> None:
    rng = Random(5)
    traffic = Traffic(transfer_share=0.7, late_share=0.1, other_caller_share=0.05)
    fates = Counter(draw_fate(rng, traffic) for _ in range(20_000))
    assert fates[Fate.NO_CALL] / 20_000 == pytest.approx(0.3, abs=0.015)
    assert fates[Fate.LATE] / 20_000 == pytest.approx(0.07, abs=0.01)
    assert fates[Fate.OTHER_CALLER] / 20_000 == pytest.approx(0.035, abs=0.01)
    everyone = Traffic(transfer_share=1.0, late_share=0.0, other_caller_share=0.0)
    assert {draw_fate(rng, everyone) for _ in range(100)} == {Fate.ON_TIME}
    nobody = Traffic(transfer_share=0.0)
    assert {draw_fate(rng, nobody) for _ in range(100)} == {Fate.NO_CALL}


def test_talk_times_are_log_normal_around_the_median() -> None:
    rng = Random(1)
    talks = [talk_seconds(rng, 100, 0.6) for _ in range(10_000)]
    assert statistics.median(talks) == pytest.approx(100, abs=4)
    below = sum(talk < 90 for talk in talks) / len(talks)
    assert 0.35 < below < 0.5  # the demo's 90 s buffer splits them
    assert all(isinstance(talk, int) and talk >= 1 for talk in talks)
    assert talk_seconds(rng, 1e9, 0.1) == MAX_TALK_SECONDS
    assert talk_seconds(rng, 0.001, 0.1) == 1


def test_unanswered_legs_follow_their_share() -> None:
    scripts = draw_scripts(Random(2), Traffic(pings=2000, no_answer_share=0.2))
    share = sum(s.unanswered > 0 for s in scripts) / len(scripts)
    assert share == pytest.approx(0.2, abs=0.03)
    assert all(s.unanswered == 0 for s in draw_scripts(Random(2), Traffic(no_answer_share=0)))


# --- TwiML and signatures -------------------------------------------------------------------


def test_parse_twiml_reads_the_dial_and_its_callbacks() -> None:
    dial = parse_twiml(DIAL.format(base=BASE, number="+13125550170"), f"{BASE}/twilio/voice")
    assert dial == Dial(
        destination="+13125550170",
        timeout=30,
        action=f"{BASE}/twilio/dial?line=%2B18885550100",
        method="POST",
        status_callback=f"{BASE}/twilio/leg?line=%2B18885550100",
        status_callback_method="POST",
    )


def test_parse_twiml_resolves_relative_urls_and_reads_sip() -> None:
    text = (
        '<Response><Dial action="dial?x=1"><Sip statusCallback="/leg">sip:a@b.example</Sip>'
        "</Dial></Response>"
    )
    dial = parse_twiml(text, "https://host.example/twilio/voice")
    assert dial is not None
    assert dial.destination == "sip:a@b.example"
    assert dial.action == "https://host.example/twilio/dial?x=1"
    assert dial.status_callback == "https://host.example/leg"
    assert (dial.timeout, dial.method) == (30, "POST")
    bare = parse_twiml("<Response><Dial>+13125550170</Dial></Response>", BASE)
    assert bare is not None
    assert (bare.destination, bare.action, bare.status_callback) == ("+13125550170", None, None)


@pytest.mark.parametrize("text", [HANGUP, "<Response/>", "<Response><Say>hi</Say></Response>"])
def test_parse_twiml_without_dial_hangs_up(text: str) -> None:
    assert parse_twiml(text, BASE) is None


@pytest.mark.parametrize(
    "text", ["", "not xml", "<html><body/></html>", "<Response><Dial> </Dial></Response>"]
)
def test_parse_twiml_refuses_what_is_not_twiml(text: str) -> None:
    with pytest.raises(ValueError, match=r"XML|TwiML|nothing to dial"):
        parse_twiml(text, BASE)


def test_signatures_are_twilios() -> None:
    url = f"{BASE}/twilio/dial?line=%2B18885550100"
    form = {"CallSid": "CA" + "0" * 32, "From": "+12125550123", "To": "+18885550100"}
    signature = sign(TOKEN, url, form)
    assert RequestValidator(TOKEN).validate(url, form, signature)
    assert is_signed(TOKEN, url, form, signature)
    assert not is_signed("other", url, form, signature)
    assert not is_signed(TOKEN, url, form | {"To": "+18885550101"}, signature)


# --- expected totals ------------------------------------------------------------------------

ANSWER = {"uuid": "u1", "retreaver_seconds": 90, "retreaver_payout": 12.5}


def test_claimed_calls_convert_at_the_promised_seconds() -> None:
    expected = Expected(pings=5, reserved=4, wiped=0)
    expected.record_claimed_call(ANSWER, 90)
    expected.record_claimed_call(ANSWER | {"uuid": "u2"}, 89)
    expected.record_claimed_call(ANSWER | {"uuid": "u3"}, None)
    assert (expected.calls, expected.claimed, expected.conversions) == (3, 3, 1)
    assert expected.expired == 1
    assert expected.converted == ["u1"]
    assert expected.totals() == {
        "pings": 5,
        "reserved": 4,
        "claimed": 3,
        "expired": 1,
        "calls": 3,
        "conversions": 1,
        "payout": 12.5,
        "revenue": 0.0,
    }


def test_unmatched_calls_convert_only_by_criteria_paying_anyone() -> None:
    rows: list[dict[str, Any]] = [
        {"id": 1, "position": 0, "publisher_id": "demo-pub", "payout": 12.5, "revenue": 25.0,
         "buffer_seconds": 90, "conditions": []},
        {"id": 2, "position": 1, "publisher_id": None, "payout": 3.0, "revenue": 7.0,
         "buffer_seconds": 60, "payout_kind": "fixed",
         "conditions": [{"tag": "caller_state", "op": "in", "values": ["NY", "NJ"]}]},
    ]  # fmt: skip
    criteria = criteria_of(list(reversed(rows)))
    assert [c.id for c in criteria] == [1, 2]
    expected = Expected()
    ny = caller_tags(Caller("+12125550123", "10001", "NY"))
    tx = caller_tags(Caller("+12145550123", "75201", "TX"))
    expected.record_unmatched_call(criteria, ny, 120)
    expected.record_unmatched_call(criteria, ny, 30)
    expected.record_unmatched_call(criteria, tx, 120)
    expected.record_unmatched_call(criteria, ny, None)
    assert (expected.calls, expected.claimed, expected.conversions) == (4, 0, 1)
    assert (expected.payout, expected.revenue) == (3.0, 7.0)
    demo_only = Expected()
    demo_only.record_unmatched_call(criteria[:1], ny, 600)
    assert demo_only.conversions == 0


def test_compare_counts_exactly_and_money_within_a_cent() -> None:
    mine = {"pings": 3, "reserved": 2, "claimed": 1, "expired": 1, "calls": 2,
            "conversions": 1, "payout": 12.5, "revenue": 25.0}  # fmt: skip
    assert all(compare(mine, mine | {"payout": 12.51, "profit": 1}).values())
    matches = compare(mine, mine | {"calls": 3, "revenue": 25.02})
    assert [c for c, ok in matches.items() if not ok] == ["calls", "revenue"]
    assert compare(mine, {})["pings"] is False
    table = render_table(mine, mine | {"calls": 3}, matches)
    assert table.splitlines()[0].split() == ["simulator", "server", "match"]
    assert "calls                2       3     NO" in table
    assert "payout           12.50   12.50    yes" in table


def test_progress_line() -> None:
    quiet = io.StringIO()
    progress = Progress(quiet, 10, live=False)
    progress.pinged, progress.calls_started, progress.calls_done = 10, 10, 5
    progress.set_phase("calling")
    assert progress.line() == f"[{'#' * 22}{'.' * 8}] pings 10/10  calls 5/10  calling"
    assert quiet.getvalue() == "callbid simulate: calling\n"
    terminal = io.StringIO()
    live = Progress(terminal, 4, live=True)
    live.draw()
    live.close()
    assert terminal.getvalue().count("\r\x1b[K") == 2
    assert terminal.getvalue().endswith("\n")


# --- the carrier and whole runs against a fake server ---------------------------------------


@dataclass
class Reservation:
    uuid: str
    caller: str
    number: str
    expires_at: datetime
    claimed: bool = False


@dataclass
class FakeServer:
    """Just enough of callbid for the simulator: answers pings, claims in-time calls from the
    reserved caller, converts claimed calls past 90 s, reports what it saw."""

    legs_unanswered_then: str = DIAL
    ttl: float = 0.4
    voice_delay: float = 0.0
    refuse_signatures: bool = False
    lose_calls: int = 0
    reservations: dict[str, Reservation] = field(default_factory=dict)
    calls: dict[str, str | None] = field(default_factory=dict)
    conversions: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    dialled: Counter[str] = field(default_factory=Counter)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        form = dict(parse_qsl(request.content.decode())) if request.method == "POST" else {}
        self.requests.append((path, form))
        if path.startswith("/twilio/"):
            return self.twilio(request, form)
        if path.startswith("/api/v1/rtb-keys/"):
            return httpx.Response(200, json={"campaign_id": 1})
        if path == "/api/v1/conversion-criteria":
            return httpx.Response(200, json=[])
        if path == "/rtbs.json":
            return self.ping(form)
        if path.startswith("/call_reservations/"):
            claimed = self.reservations[path.rsplit("/", 1)[1]].claimed
            return httpx.Response(200, json={"revenue": 25.0, "claimed_at": claimed or None})
        if path == "/api/v1/reports/summary":
            return httpx.Response(200, json=self.report())
        return httpx.Response(404)

    async def handle_slowly(self, request: httpx.Request) -> httpx.Response:
        """Incoming calls are seen `voice_delay` after they were sent."""
        if request.url.path == "/twilio/voice":
            await asyncio.sleep(self.voice_delay)
        return self.handle(request)

    def ping(self, form: dict[str, str]) -> httpx.Response:
        uuid = f"r{len(self.reservations)}"
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl)
        stamp = expires.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        number = "+18885550100"
        self.reservations[uuid] = Reservation(uuid, form["caller_number"], number, expires)
        body = {"uuid": uuid, "status": "reserved", "retreaver_payout": 12.5,
                "retreaver_seconds": 90, "inbound_number": number,
                "expires_at": stamp}  # fmt: skip
        return httpx.Response(200, json=body)

    def twilio(self, request: httpx.Request, form: dict[str, str]) -> httpx.Response:
        signature = request.headers.get("X-Twilio-Signature")
        if self.refuse_signatures or not is_signed(TOKEN, str(request.url), form, signature):
            return httpx.Response(403)
        path, sid = request.url.path, form["CallSid"]
        if path == "/twilio/voice":
            self.calls[sid] = self.claim(form["From"], form["To"])
        if path == "/twilio/dial" and form["DialCallStatus"] == "completed":
            if self.calls[sid] and int(form["DialCallDuration"]) >= 90:
                self.conversions += 1
            return httpx.Response(200, text=HANGUP)
        if path in ("/twilio/voice", "/twilio/dial"):
            self.dialled[sid] += 1
            if self.dialled[sid] > 2:
                return httpx.Response(200, text=HANGUP)
            return httpx.Response(200, text=DIAL.format(base=BASE, number="+13125550170"))
        return httpx.Response(200, text="<Response/>")

    def claim(self, caller: str, number: str) -> str | None:
        now = datetime.now(UTC)
        for row in self.reservations.values():
            live = now < row.expires_at and not row.claimed
            if live and (row.caller, row.number) == (caller, number):
                row.claimed = True
                return row.uuid
        return None

    def report(self) -> dict[str, Any]:
        claimed = sum(r.claimed for r in self.reservations.values())
        return {"pings": len(self.reservations), "reserved": len(self.reservations),
                "claimed": claimed, "expired": len(self.reservations) - claimed,
                "calls": len(self.calls) - self.lose_calls, "conversions": self.conversions,
                "payout": 12.5 * self.conversions, "revenue": 25.0 * self.conversions}  # fmt: skip


CREDENTIALS = Credentials("key", "demo-pub", "admin", TOKEN)


def fast_options(**traffic: Any) -> Options:
    return Options(
        url=BASE,
        credentials=CREDENTIALS,
        traffic=Traffic(**({"pings": 30} | traffic)),
        rate=0,
        seed=4,
        on_time_margin=0.2,
        late_margin=0.05,
        sweep_wait=0.0,
        settle=0.0,
    )


async def run_against(server: FakeServer, options: Options) -> Any:
    transport = httpx.MockTransport(server.handle_slowly)
    return await simulate(options, io.StringIO(), transport=transport, live=False)


async def test_a_run_agrees_with_a_server_that_counts_right() -> None:
    server = FakeServer()
    outcome = await run_against(server, fast_options(late_share=0.2, other_caller_share=0.2))
    assert outcome.match, outcome.as_text()
    assert outcome.errors == {}
    assert outcome.expected["pings"] == 30
    assert 0 < outcome.expected["claimed"] < outcome.expected["calls"]
    assert outcome.expected["revenue"] == 25.0 * outcome.expected["conversions"]
    paths = Counter(path for path, _ in server.requests)
    assert paths["/twilio/voice"] == paths["/twilio/status"] == outcome.expected["calls"]
    assert 0 < paths["/twilio/leg"] <= paths["/twilio/dial"]
    assert outcome.as_json()["match"] is True
    assert "every column matches" in outcome.as_text()


async def test_calls_the_server_saw_after_expiry_count_as_it_recorded_them() -> None:
    server = FakeServer(voice_delay=0.35)
    outcome = await run_against(server, fast_options(pings=20, no_answer_share=0))
    assert outcome.match, outcome.as_text()
    assert outcome.notes["boundary"] > 0
    assert outcome.as_json()["boundary"] == outcome.notes["boundary"]
    assert "answered after expires_at" in outcome.as_text()


async def test_a_replayed_run_places_new_calls() -> None:
    first, again = FakeServer(), FakeServer()
    assert (await run_against(first, fast_options(pings=10))).match
    assert (await run_against(again, fast_options(pings=10))).match
    assert first.calls
    assert len(first.calls) == len(again.calls)
    assert not set(first.calls) & set(again.calls)


async def test_a_run_reports_the_column_that_disagrees() -> None:
    outcome = await run_against(FakeServer(lose_calls=1), fast_options())
    assert not outcome.match
    assert [c for c, ok in outcome.matches.items() if not ok] == ["calls"]
    assert outcome.as_json()["server"]["calls"] == outcome.expected["calls"] - 1
    assert "MISMATCH" in outcome.as_text()


async def test_refused_webhooks_are_errors_and_nothing_connects() -> None:
    outcome = await run_against(FakeServer(refuse_signatures=True), fast_options())
    refused = "POST /twilio/voice 403 (signed with the carrier token from --carrier-token)"
    assert outcome.errors[refused] == outcome.expected["calls"]
    assert outcome.expected["conversions"] == 0
    assert not outcome.match  # the server claimed nothing the simulator called in time


async def test_a_refused_signature_names_where_its_token_came_from() -> None:
    source = "of the local demo (in /srv/callbid.db)"
    credentials = replace(CREDENTIALS, carrier_token_source=source)
    options = replace(fast_options(pings=3), credentials=credentials)
    outcome = await run_against(FakeServer(refuse_signatures=True), options)
    assert set(outcome.errors) == {
        f"POST /twilio/{path} 403 (signed with the carrier token {source})"
        for path in ("voice", "status")
    }


async def test_an_unanswered_leg_is_reported_and_the_next_one_dialled() -> None:
    server = FakeServer()
    errors: list[str] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handle)) as client:
        carrier = Carrier(client, BASE, TOKEN, "AC" + "1" * 32, errors.append)
        caller = Caller("+12125550123", "10001", "NY")
        script = Script(caller, Fate.ON_TIME, 120, 0.0, unanswered=1)
        placed = await carrier.place_call(caller, "+18885550100", script, "CA" + "2" * 32)
        assert placed.talk == 120
        assert placed.answered_at is not None
        lonely = Script(caller, Fate.ON_TIME, 120, 0.0, unanswered=5)
        assert (await carrier.place_call(caller, "+18885550100", lonely)).talk is None
    assert errors == []
    outcomes = [f["DialCallStatus"] for path, f in server.requests if path == "/twilio/dial"]
    assert outcomes == ["no-answer", "completed", "no-answer", "no-answer"]
    legs = [f for path, f in server.requests if path == "/twilio/leg"]
    assert [leg["ParentCallSid"] for leg in legs] == ["CA" + "2" * 32]
    ends = [f for path, f in server.requests if path == "/twilio/status"]
    assert [end["CallDuration"] for end in ends] == ["154", "60"]  # 30 ringing + 4 + 120; 2x30


async def test_an_unreachable_server_fails_the_run() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(SimulationError, match="cannot reach"):
        await simulate(fast_options(), io.StringIO(), transport=httpx.MockTransport(refuse))


# --- the command line -----------------------------------------------------------------------


def test_command_needs_credentials_or_a_demo_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/none.db"
    assert main(["--database-url", database, "simulate", "--pings", "1"]) == 2
    assert "--key, --publisher-id, --admin-token, --carrier-token" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_command_refuses_shares_adding_up_past_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--late-share", "0.6", "--other-caller-share", "0.5"]) == 2
    assert "add up to more than 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--transfer-share", "1.5"])


def test_command_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--url", "http://127.0.0.1:9", "--key", "k", "--publisher-id", "p"]
    args += ["--admin-token", "a", "--carrier-token", "c"]
    assert main(args) == 2
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
