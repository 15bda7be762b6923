"""Pixels as pure functions: rendering with escaping, conditions, backoff, tokens and the
outbox rows an event adds to its batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbid.adapters.storage.deliveries import DELIVERY_RANK, INSERT_DELIVERY
from callbid.domain.model import Campaign, FilterOp, TagRule
from callbid.domain.pixels import PixelEvent, RetryPolicy, Webhook, next_attempt, render
from callbid.domain.tokens import json_value
from callbid.service.pixels import money_text, pixel_ops, pixel_tokens
from callbid.settings import Settings

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
HOSTILE = [
    'quote " and \\ backslash',
    "new\nline\r\nand\ttab",
    "a&b=c?d#e/f+g%20",
    "unicode é ñ 漢字 🙂",
    '"} , "injected": true, {"',
    "\u2028\u2029\x00\x7f\x85",
    "lone \ud800 surrogate",
]


def hook(**fields: object) -> Webhook:
    values: dict[str, object] = {"id": 7, "event": PixelEvent.RESERVED, "url": "https://x.test/p"}
    values.update(fields)
    return Webhook(**values)  # type: ignore[arg-type]


def test_tokens_are_substituted_everywhere_and_unknown_ones_are_empty() -> None:
    webhook = hook(
        url="https://x.test/p?c=[caller_number]&pub=[Publisher_ID]&x=[nope]",
        headers=(("X-Campaign", "c-[campaign_id]"),),
        body='{"payout": [payout], "zip": "[caller_zip]", "none": "[nope]"}',
    )
    tokens = {"caller_number": "+13035551234", "publisher_id": "pub 1", "payout": "12.50"}
    tokens |= {"campaign_id": "5", "caller_zip": "80301"}

    pixel = render(webhook, tokens)

    assert pixel is not None
    assert pixel.url == "https://x.test/p?c=%2B13035551234&pub=pub%201&x="
    assert json.loads(pixel.body or "") == {"payout": 12.5, "zip": "80301", "none": ""}
    assert pixel.headers == (("X-Campaign", "c-5"), ("Content-Type", "application/json"))
    assert (pixel.webhook_id, pixel.event, pixel.method) == (7, PixelEvent.RESERVED, "POST")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_inside_url_headers_and_bodies(value: str) -> None:
    json_hook = hook(
        url="https://x.test/p?v=[v]",
        headers=(("X-V", "[v]"),),
        body='{"v": "[v]"}',
    )
    form_hook = hook(body="v=[v]&w=1", content_type="application/x-www-form-urlencoded")

    pixel = render(json_hook, {"v": value})
    form = render(form_hook, {"v": value})

    assert pixel is not None
    assert form is not None
    query = parse_qs(urlsplit(pixel.url).query, errors="replace")
    assert set(query) == {"v"}
    assert not any(c in pixel.headers[0][1] for c in "\r\n\x00\u2028")
    assert set(json.loads(pixel.body or "")) == {"v"}
    assert set(parse_qs(form.body or "", errors="replace")) <= {"v", "w"}
    assert form.headers == (("Content-Type", "application/x-www-form-urlencoded"),)


def test_a_raw_body_is_sent_as_given_and_a_get_without_body_has_no_content_type() -> None:
    text = render(hook(body="caller [caller_number]", content_type="text/plain"), {})
    get = render(hook(method="GET", url="https://x.test/p?u=[uuid]"), {"uuid": "u-1"})
    assert text is not None
    assert get is not None
    assert text.body == "caller "
    assert get.body is None
    assert get.headers == ()
    assert get.url == "https://x.test/p?u=u-1"


def test_conditions_decide_whether_the_pixel_fires() -> None:
    webhook = hook(
        conditions=(
            TagRule("caller_state", FilterOp.IN, ("CO", "TX")),
            TagRule("publisher_id", FilterOp.EQUALS, ("pub-1",)),
        )
    )
    assert render(webhook, {"caller_state": "co", "publisher_id": "pub-1"}) is not None
    assert render(webhook, {"caller_state": "NY", "publisher_id": "pub-1"}) is None
    assert render(webhook, {"publisher_id": "pub-1"}) is None


TOKEN_NAMES = st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True)


@given(
    named=st.dictionaries(TOKEN_NAMES, st.text(max_size=40), max_size=6),
    junk=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=4),
    template=st.text(max_size=60),
)
def test_render_never_raises_and_a_json_body_stays_json(
    named: dict[str, str], junk: dict[str, str], template: str
) -> None:
    names = [*named, "missing"]
    body = "{" + ", ".join(f'"k{i}": "[{n}]"' for i, n in enumerate(names)) + "}"
    webhook = hook(url="https://x.test/[a]?" + template, headers=(("X", template),), body=body)
    tokens = junk | {k.lower(): v for k, v in named.items()}

    pixel = render(webhook, tokens)

    assert pixel is not None
    json.loads(pixel.body or "")
    assert not any(c in pixel.headers[0][1] for c in "\r\n")


@given(st.text())
def test_json_value_is_the_inside_of_a_json_string(value: str) -> None:
    decoded = json.loads(f'"{json_value(value)}"')
    assert decoded == value
    json_value(value).encode("utf-8")  # always sendable, lone surrogates escaped


def test_backoff_doubles_up_to_its_cap_then_gives_up() -> None:
    policy = RetryPolicy(base_seconds=5, max_seconds=60, max_attempts=6)
    waits = [next_attempt(n, NOW, policy) for n in range(1, 7)]
    assert [(w - NOW).total_seconds() for w in waits if w is not None] == [5, 10, 20, 40, 60]
    assert waits[-1] is None


def test_default_backoff() -> None:
    assert next_attempt(1, NOW) == NOW + timedelta(seconds=5)
    assert next_attempt(9, NOW) == NOW + timedelta(seconds=1280)
    assert next_attempt(10, NOW) is None
    huge = RetryPolicy(max_attempts=10_000)
    assert next_attempt(5000, NOW, huge) == NOW + timedelta(hours=1)


def test_settings_refuse_a_cap_below_the_first_wait() -> None:
    with pytest.raises(ValueError, match="pixel_backoff_max_seconds"):
        Settings(pixel_backoff_base_seconds=10, pixel_backoff_max_seconds=5)


def test_money_text() -> None:
    assert [money_text(v) for v in (12.5, 0, 3.33333, 7, 0.015)] == [
        "12.50",
        "0.00",
        "3.3333",
        "7.00",
        "0.015",
    ]


def test_standard_tokens_win_over_tags_and_unknowns_are_empty() -> None:
    tokens = pixel_tokens(
        event=PixelEvent.ANSWERED,
        reservation_uuid="r-1",
        call_uuid="c-1",
        caller_number="+13035551234",
        publisher_id="pub-1",
        payout=12.5,
        target_id=3,
        tags={"Caller_Zip": "80301", "publisher_id": "spoofed", "payout": "999"},
    )
    assert tokens["caller_zip"] == "80301"
    assert tokens["publisher_id"] == "pub-1"
    assert tokens["payout"] == "12.50"
    assert (tokens["uuid"], tokens["call_uuid"], tokens["event"]) == ("c-1", "c-1", "answered")
    assert tokens["caller_number_nanp"] == "3035551234"
    assert tokens["revenue"] == tokens["inbound_number"] == tokens["campaign_id"] == ""
    assert tokens["target_id"] == "3"


def test_pixel_ops_add_one_outbox_row_per_pixel_that_fires() -> None:
    campaign = Campaign(
        5,
        2,
        "c",
        webhooks=(
            hook(id=1, url="https://a.test/[uuid]"),
            hook(id=2, conditions=(TagRule("caller_zip", FilterOp.EXISTS),)),
            hook(id=3, event=PixelEvent.CONVERTED),
            hook(id=4, headers=(("X-Pub", "[publisher_id]"),), body='{"p": "[payout]"}'),
        ),
    )
    tokens = pixel_tokens(event=PixelEvent.RESERVED, reservation_uuid="r-1", publisher_id="p")

    ops = pixel_ops(campaign, PixelEvent.RESERVED, tokens, NOW)

    assert [op.params["webhook_id"] for op in ops] == [1, 4]
    assert all(op.rank == DELIVERY_RANK and op.statement is INSERT_DELIVERY for op in ops)
    first, second = (op.params for op in ops)
    assert first["url"] == "https://a.test/r-1"
    assert (first["company_id"], first["event"], first["subject"]) == (2, "reserved", "r-1")
    assert (first["status"], first["attempts"], first["next_attempt_at"]) == ("pending", 0, NOW)
    assert second["headers"] == {"X-Pub": "p", "Content-Type": "application/json"}
    assert second["body"] == '{"p": ""}'
    assert pixel_ops(Campaign(5, 2, "c"), PixelEvent.RESERVED, tokens, NOW) == []
