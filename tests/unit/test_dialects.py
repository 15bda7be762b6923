"""Buyer dialects: tokens, request building, answer parsing, templates and config validation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbid.adapters.buyers.dialect import (
    build_request,
    compile_expression,
    parse_reply,
    parser_for,
    ping_tokens,
    release_request,
    walk,
)
from callbid.adapters.buyers.templates import (
    TEMPLATE_NAMES,
    TEMPLATES,
    passthrough_from,
    passthrough_to_dict,
)
from callbid.domain.buyers import (
    NumberMode,
    ParsedReply,
    Passthrough,
    ReplyOutcome,
    ResponseMapping,
)
from callbid.domain.model import PingRequest

FIXTURES = Path(__file__).parent.parent / "fixtures" / "buyers"
ACCEPTED = ReplyOutcome.ACCEPTED
DECLINED = ReplyOutcome.DECLINED
ERROR = ReplyOutcome.ERROR
HOSTILE = [
    'quote " and \\ backslash',
    "new\nline\r\nand\ttab",
    "a&b=c?d#e/f+g%20",
    "unicode é ñ 漢字 🙂",
    ']} "injected": true, {[',
    "\u2028\u2029\x00\x7f\x85",
]


def ping(caller: str | None = "+13035551234", tags: dict[str, str] | None = None) -> PingRequest:
    base = {"caller_zip": "80301", "caller_state": "CO"}
    return PingRequest("key1", "pub-7", caller, None, base if tags is None else tags)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def config(template: str, **extra: Any) -> dict[str, Any]:
    return {"template": template, "url": "https://buyer.example.com/bid", **extra}


# --- tokens -------------------------------------------------------------------------------


def test_ping_tokens_give_tags_and_caller_forms() -> None:
    request = PingRequest("k", "pub-7", "+13035551234", "+18885550123", {"caller_zip": "80301"})
    assert ping_tokens(request, uuid="u-1") == {
        "caller_zip": "80301",
        "caller_number": "+13035551234",
        "caller_number_nanp": "3035551234",
        "caller_number_digits": "13035551234",
        "publisher_id": "pub-7",
        "uuid": "u-1",
        "reservation_uuid": "u-1",
        "inbound_number": "+18885550123",
    }


def test_ping_tokens_without_caller_are_empty_and_builtins_win() -> None:
    tokens = ping_tokens(ping(None, {"caller_number": "spoof", "publisher_id": "x"}), uuid="u")
    assert tokens["caller_number"] == ""
    assert tokens["caller_number_nanp"] == ""
    assert tokens["caller_number_digits"] == ""
    assert tokens["publisher_id"] == "pub-7"
    assert "inbound_number" not in tokens


def test_non_nanp_caller_keeps_all_digits() -> None:
    tokens = ping_tokens(ping("+442071838750"), uuid="u")
    assert tokens["caller_number_nanp"] == "442071838750"
    assert tokens["caller_number_digits"] == "442071838750"


# --- building requests --------------------------------------------------------------------


def test_url_tokens_are_percent_encoded_and_unknown_tokens_empty() -> None:
    p = Passthrough(
        url="https://b.example.com/ping?cid=[Caller_Number]&q=[note]&x=[missing]",
        mapping=ResponseMapping(bid="bid"),
        method="GET",
    )
    request = build_request(p, {"caller_number": "+13035551234", "note": "a&b c/d"})
    assert request.url == "https://b.example.com/ping?cid=%2B13035551234&q=a%26b%20c%2Fd&x="
    assert request.method == "GET"
    assert request.body is None
    assert request.headers == ()


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_values_stay_inside_url_headers_and_bodies(hostile: str) -> None:
    tokens = {"v": hostile}
    url = build_request(Passthrough("https://b.example.com/?v=[v]", ResponseMapping()), tokens)
    assert unquote(url.url.split("?v=", 1)[1]) == hostile
    assert url.url.isascii()
    assert url.url.isprintable()
    assert " " not in url.url

    json_body = Passthrough(
        "https://b.example.com/",
        ResponseMapping(),
        headers=(("X-Tag", "t=[v];"),),
        body='{"v": "[v]", "n": 1}',
    )
    request = build_request(json_body, tokens)
    assert request.body is not None
    assert json.loads(request.body) == {"v": hostile, "n": 1}
    (name, value) = request.headers[0]
    assert name == "X-Tag"
    assert not any(c in value for c in "\r\n\x00\x7f\x85\u2028\u2029")
    assert value.startswith("t=")
    assert value.endswith(";")

    form = Passthrough(
        "https://b.example.com/",
        ResponseMapping(),
        body="v=[v]&k=1",
        content_type="application/x-www-form-urlencoded",
    )
    body = build_request(form, tokens).body
    assert body is not None
    assert parse_qs(body.decode(), keep_blank_values=True) == {"v": [hostile], "k": ["1"]}


def test_raw_body_is_sent_as_given_with_its_content_type() -> None:
    p = Passthrough(
        "https://b.example.com/", ResponseMapping(), body="cid=[v]", content_type="text/plain"
    )
    request = build_request(p, {"v": 'a"b&c'})
    assert request.body == b'cid=a"b&c'
    assert request.headers == (("Content-Type", "text/plain"),)


def test_content_type_header_is_not_doubled_and_get_keeps_its_body() -> None:
    p = Passthrough(
        "https://b.example.com/",
        ResponseMapping(),
        method="GET",
        headers=(("content-type", "application/json; charset=utf-8"),),
        body='{"a": "[x]"}',
    )
    request = build_request(p, {"x": "é"})
    assert request.method == "GET"
    assert request.body == '{"a": "é"}'.encode()
    assert request.headers == (("content-type", "application/json; charset=utf-8"),)


@settings(max_examples=300, deadline=None)
@given(value=st.text(), name=st.sampled_from(["v", "V", "caller.zip", "sub-id"]))
def test_any_tag_keeps_json_valid_and_headers_single_line(value: str, name: str) -> None:
    p = Passthrough(
        "https://b.example.com/[" + name + "]",
        ResponseMapping(),
        headers=(("X-V", "[" + name + "]"),),
        body='{"k": "[' + name + ']", "list": ["[' + name + ']"]}',
    )
    request = build_request(p, {name.lower(): value})
    assert request.body is not None
    parsed = json.loads(request.body)
    assert parsed["k"] == parsed["list"][0]
    assert all(c not in request.headers[0][1] for c in "\r\n")
    assert request.url.isascii()
    assert request.url.isprintable()
    assert " " not in request.url


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "ringba",
            {
                "CID": "13035551234",
                "zipcode": "80301",
                "exposeCallerId": "yes",
                "publisherInboundCallId": "u-9",
            },
        ),
        (
            "callgrid",
            {
                "CallerId": "3035551234",
                "InboundStateCode": "CO",
                "InboundZipCode": "80301",
                "PublisherId": "pub-7",
                "pstn": True,
            },
        ),
        (
            "retreaver",
            {"caller_number": "+13035551234", "caller_zip": "80301", "caller_state": "CO"},
        ),
    ],
)
def test_template_bodies_fill_from_a_ping(template: str, expected: dict[str, Any]) -> None:
    p = passthrough_from(config(template))
    request = build_request(p, ping_tokens(ping(), uuid="u-9"))
    assert request.method == "POST"
    assert request.url == "https://buyer.example.com/bid"
    assert request.body is not None
    assert json.loads(request.body) == expected
    assert ("Content-Type", "application/json") in request.headers


# --- parsing: the templates' own answers --------------------------------------------------


@pytest.mark.parametrize(
    ("template", "name", "expected"),
    [
        ("ringba", "ringba_accepted", ParsedReply(ACCEPTED, 42.5, "+17733408913", 90)),
        ("ringba", "ringba_cached", ParsedReply(ACCEPTED, 4.2, "+13035550188", 120)),
        ("ringba", "ringba_rejected", ParsedReply(DECLINED, detail="Missing required fields")),
        (
            "callgrid",
            "callgrid_accepted",
            ParsedReply(ACCEPTED, 29.92, "sip:cmp5yu7uu04qk07js2y9fbxkn@sip.callgrid.com"),
        ),
        ("callgrid", "callgrid_accepted_pstn", ParsedReply(ACCEPTED, 18.5, "+18885550123")),
        ("callgrid", "callgrid_declined", ParsedReply(DECLINED, detail="Bid declined")),
        ("callgrid", "callgrid_no_capacity", ParsedReply(DECLINED, detail="No capacity")),
        ("callgrid", "callgrid_error", ParsedReply(DECLINED, detail="Invalid caller ID")),
        (
            "retreaver",
            "retreaver_reserved",
            ParsedReply(
                ACCEPTED, 12.5, "+18885550123", 90, reference="0b7e3a52-5f1c-4d0e-9a57-2f4b1c8d9e10"
            ),
        ),
        (
            "retreaver",
            "retreaver_confirmed",
            ParsedReply(
                ACCEPTED,
                25.0,
                "+18885550123",
                120,
                reference="0b7e3a52-5f1c-4d0e-9a57-2f4b1c8d9e10",
            ),
        ),
        (
            "callbid",
            "retreaver_reserved",
            ParsedReply(
                ACCEPTED, 12.5, "+18885550123", 90, reference="0b7e3a52-5f1c-4d0e-9a57-2f4b1c8d9e10"
            ),
        ),
        ("callbid", "callbid_no_target", ParsedReply(DECLINED, detail="no-target")),
        (
            "callbid",
            "callbid_rejected",
            ParsedReply(DECLINED, detail="Caller is on the block list"),
        ),
    ],
)
def test_templates_parse_their_fixtures(template: str, name: str, expected: ParsedReply) -> None:
    parse = parser_for(passthrough_from(config(template)).mapping)
    assert parse(200, fixture(name), "application/json") == expected


def test_ringba_without_a_phone_number_is_declined() -> None:
    mapping = TEMPLATES["ringba"].mapping
    body = b'{"bidAmount": 12, "sipAddress": "x@sip.example.com", "rejectReason": ""}'
    assert parse_reply(mapping, 200, body, None) == ParsedReply(DECLINED, detail="declined")


# --- parsing: statuses and bodies ---------------------------------------------------------

BID_ONLY = ResponseMapping(bid="bid", number="number", seconds="seconds", reason="reason")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (204, ParsedReply(DECLINED, detail="no content")),
        (301, ParsedReply(ERROR, detail="redirect 301")),
        (307, ParsedReply(ERROR, detail="redirect 307")),
        (404, ParsedReply(ERROR, detail="http 404")),
        (500, ParsedReply(ERROR, detail="http 500")),
        (101, ParsedReply(ERROR, detail="http 101")),
    ],
)
def test_statuses(status: int, expected: ParsedReply) -> None:
    assert parse_reply(BID_ONLY, status, b'{"bid": 5}', "application/json") == expected


@pytest.mark.parametrize("body", [b"", b"<html>busy</html>", b'{"bid": 5', b"\xff\xfe"])
def test_unreadable_json_is_an_error(body: bytes) -> None:
    assert parse_reply(BID_ONLY, 200, body, None) == ParsedReply(ERROR, detail="malformed JSON")


def test_regex_only_mappings_need_no_json() -> None:
    mapping = ResponseMapping(
        accepted="re:ACCEPT",
        bid=r"re:price=\$?([\d.]+)",
        number=r"re:tel:(\+?\d+)",
        seconds=r"re:dur=(\d+)",
    )
    body = b"ACCEPT price=$17.25 tel:+18885550123 dur=45 \xff"
    assert parse_reply(mapping, 200, body, "text/plain") == ParsedReply(
        ACCEPTED, 17.25, "+18885550123", 45
    )
    declined = parse_reply(mapping, 200, b"REJECT", "text/plain")
    assert declined == ParsedReply(DECLINED, detail="declined")


def test_jsonpath_style_roots_are_read() -> None:
    mapping = ResponseMapping(bid="$.data.bid", number="$.data.to", seconds="$[0]")
    body = b'{"data": {"bid": "$ 12.50 ", "to": "(303) 555-0199"}}'
    assert parse_reply(mapping, 200, body, None) == ParsedReply(ACCEPTED, 12.5, "+13035550199")


def test_multiplier_and_offset() -> None:
    mapping = ResponseMapping(
        bid="cents", seconds="secs", bid_multiplier=0.01, seconds_offset=-30, number="n"
    )
    body = b'{"cents": 1234.56789, "secs": 95.9, "n": 18885550123}'
    assert parse_reply(mapping, 200, body, None) == ParsedReply(
        ACCEPTED, 12.3457, "+18885550123", 65
    )
    short = b'{"cents": 100, "secs": "10"}'
    assert parse_reply(mapping, 200, short, None) == ParsedReply(ACCEPTED, 1.0, None, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1000, True),
        (1000.0, True),
        ("1000", True),
        (" 1000 ", True),
        ("OK", True),
        (True, True),
        ("true", True),
        (2000, False),
        (1000.5, False),
        (None, False),
        (False, False),
    ],
)
def test_accepted_values_compare_as_lower_case_text(value: object, expected: bool) -> None:
    mapping = ResponseMapping(accepted="code", accepted_values=("1000", "ok", "TRUE"))
    body = json.dumps({"code": value}).encode()
    outcome = parse_reply(mapping, 200, body, None).outcome
    assert outcome == (ACCEPTED if expected else DECLINED)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        ("yes", True),
        (1, True),
        ({"a": 1}, True),
        (False, False),
        ("false", False),
        ("No", False),
        ("0", False),
        (0, False),
        ("", False),
        ([], False),
        (None, False),
    ],
)
def test_accepted_without_values_is_truthiness(value: object, expected: bool) -> None:
    mapping = ResponseMapping(accepted="ok", reason="why")
    body = json.dumps({"ok": value, "why": "full"}).encode()
    reply = parse_reply(mapping, 200, body, None)
    assert reply == (ParsedReply(ACCEPTED) if expected else ParsedReply(DECLINED, detail="full"))


@pytest.mark.parametrize(
    ("bid", "expected"),
    [
        (12, ParsedReply(ACCEPTED, 12.0)),
        ("$12.50", ParsedReply(ACCEPTED, 12.5)),
        ("  7 ", ParsedReply(ACCEPTED, 7.0)),
        ("", ParsedReply(DECLINED, detail="declined")),
        (0, ParsedReply(DECLINED, detail="no bid")),
        ("abc", ParsedReply(ERROR, detail="malformed bid")),
        ("NaN", ParsedReply(ERROR, detail="malformed bid")),
        ("inf", ParsedReply(ERROR, detail="malformed bid")),
        (-1, ParsedReply(ERROR, detail="malformed bid")),
        ("-0.5", ParsedReply(ERROR, detail="malformed bid")),
        (True, ParsedReply(ERROR, detail="malformed bid")),
        ([1], ParsedReply(ERROR, detail="malformed bid")),
        ("1" * 400, ParsedReply(ERROR, detail="malformed bid")),
    ],
)
def test_bids(bid: object, expected: ParsedReply) -> None:
    body = json.dumps({"bid": bid}).encode()
    assert parse_reply(BID_ONLY, 200, body, None) == expected


def test_huge_integer_bid_from_a_regex_is_malformed_not_a_crash() -> None:
    mapping = ResponseMapping(bid=r"re:(\d+)")
    reply = parse_reply(mapping, 200, b"9" * 5000, None)
    assert reply == ParsedReply(ERROR, detail="malformed bid")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (90, 90),
        (90.9, 90),
        ("60", 60),
        ("60.5", 60),
        (-5, 0),
        (None, None),
    ],
)
def test_seconds(seconds: object, expected: int | None) -> None:
    body = json.dumps({"bid": 1, "seconds": seconds}).encode()
    assert parse_reply(BID_ONLY, 200, body, None) == ParsedReply(ACCEPTED, 1.0, seconds=expected)


@pytest.mark.parametrize("seconds", ["soon", True, {"s": 1}, "nan"])
def test_malformed_seconds(seconds: object) -> None:
    body = json.dumps({"bid": 1, "seconds": seconds}).encode()
    assert parse_reply(BID_ONLY, 200, body, None) == ParsedReply(ERROR, detail="malformed seconds")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+1 (888) 555-0123", "+18885550123"),
        ("8885550123", "+18885550123"),
        (18885550123, "+18885550123"),
        ("sip:buyer@sip.example.com", "sip:buyer@sip.example.com"),
        ("SIPS:buyer@sip.example.com;transport=tls", "SIPS:buyer@sip.example.com;transport=tls"),
        ("RTB1@rtb.ringba.sip.telnyx.com", "sip:RTB1@rtb.ringba.sip.telnyx.com"),
    ],
)
def test_numbers(number: object, expected: str) -> None:
    body = json.dumps({"number": number}).encode()
    assert parse_reply(BID_ONLY, 200, body, None) == ParsedReply(ACCEPTED, number=expected)


@pytest.mark.parametrize("number", ["12345", "call me", "+10005550123", ["+18885550123"], False])
def test_malformed_numbers(number: object) -> None:
    body = json.dumps({"bid": 3, "number": number}).encode()
    assert parse_reply(BID_ONLY, 200, body, None) == ParsedReply(ERROR, detail="malformed number")


def test_without_accepted_a_zero_bid_with_a_number_is_no_bid() -> None:
    body = b'{"bid": 0, "number": "+18885550123"}'
    assert parse_reply(BID_ONLY, 200, body, None) == ParsedReply(DECLINED, detail="no bid")
    body = b'{"number": "+18885550123"}'
    assert parse_reply(BID_ONLY, 200, body, None) == ParsedReply(ACCEPTED, number="+18885550123")
    body = b'{"reason": "capped"}'
    assert parse_reply(BID_ONLY, 200, body, None) == ParsedReply(DECLINED, detail="capped")


def test_accepted_with_nothing_usable_is_still_accepted() -> None:
    mapping = ResponseMapping(accepted="ok", bid="bid", number="number", seconds="s")
    assert parse_reply(mapping, 200, b'{"ok": true}', None) == ParsedReply(ACCEPTED)


def test_a_decline_ignores_malformed_fields() -> None:
    mapping = ResponseMapping(accepted="ok", bid="bid", reason="why")
    body = b'{"ok": false, "bid": "n/a", "why": "outside hours"}'
    assert parse_reply(mapping, 200, body, None) == ParsedReply(DECLINED, detail="outside hours")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("x" * 500, "x" * 200),
        ("  spaced  ", "spaced"),
        (42, "42"),
        ({"code": 5}, '{"code":5}'),
        ("", "declined"),
    ],
)
def test_reasons(reason: object, expected: str) -> None:
    mapping = ResponseMapping(accepted="ok", reason="why")
    body = json.dumps({"ok": False, "why": reason}).encode()
    assert parse_reply(mapping, 200, body, None) == ParsedReply(DECLINED, detail=expected)


def test_mapping_that_fails_to_compile_or_to_run_is_an_error() -> None:
    bad = ResponseMapping(bid="re:(")
    assert parse_reply(bad, 200, b"{}", None).outcome == ERROR
    assert parse_reply(bad, 200, b"{}", None).detail is not None
    failing = ResponseMapping(number="join('', [missing])")
    assert parse_reply(failing, 200, b"{}", None) == ParsedReply(
        ERROR, detail="bad mapping for number"
    )


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["bidAmount", "phoneNumber", "code", "status", "dynamicBid", "bid", "number", "n"]
)
JSON_BODY = st.one_of(
    JSON,
    st.dictionaries(KEYS, JSON, max_size=6),
).map(lambda value: json.dumps(value).encode())
MAPPINGS = st.sampled_from(
    [
        *(t.mapping for t in TEMPLATES.values()),
        BID_ONLY,
        ResponseMapping(accepted="re:(yes|no)", bid=r"re:\d+", number="re:\\S+@\\S+"),
        ResponseMapping(accepted="$", bid="$[0]", seconds="n[*].n | [0]", reason="@"),
        ResponseMapping(number="join('', [n])", bid="length(@)", seconds="max(@)"),
    ]
)


PLAIN_PATHS = st.lists(
    st.sampled_from(["a", "b", "bidTerms"]).map(lambda name: "." + name)
    | st.integers(min_value=-3, max_value=3).map(lambda i: f"[{i}]"),
    max_size=4,
).map(lambda steps: "a" + "".join(steps))
SMALL_JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "bidTerms"]), inner)
    ),
    max_leaves=15,
)


@settings(max_examples=400, deadline=None)
@given(path=PLAIN_PATHS, document=SMALL_JSON)
def test_plain_paths_answer_as_jmespath_does(path: str, document: object) -> None:
    expression = compile_expression(path)
    assert expression.steps is not None
    assert walk(document, expression.steps) == jmespath.search(path, document)


@settings(max_examples=500, deadline=None)
@given(
    mapping=MAPPINGS,
    status=st.integers(min_value=0, max_value=999),
    body=st.binary(max_size=200) | JSON_BODY,
    content_type=st.none() | st.text(max_size=20),
)
def test_parse_reply_never_raises(
    mapping: ResponseMapping, status: int, body: bytes, content_type: str | None
) -> None:
    reply = parse_reply(mapping, status, body, content_type)
    assert reply.outcome in (ACCEPTED, DECLINED, ERROR)
    assert reply.bid is None or reply.bid >= 0
    assert reply.seconds is None or reply.seconds >= 0
    assert reply.detail is None or len(reply.detail) <= 200


# --- templates and config validation ------------------------------------------------------


def test_template_names() -> None:
    assert TEMPLATE_NAMES == ("custom", "ringba", "callgrid", "retreaver", "callbid")


@pytest.mark.parametrize(
    ("template", "mode"),
    [
        ("ringba", NumberMode.TRANSFER),
        ("callgrid", NumberMode.TRANSFER),
        ("retreaver", NumberMode.DIAL),
        ("callbid", NumberMode.DIAL),
    ],
)
def test_templates_give_their_defaults(template: str, mode: NumberMode) -> None:
    p = passthrough_from(config(template))
    assert p.dialect == template
    assert p.number_mode == mode
    assert p.method == "POST"
    assert p.content_type == "application/json"
    assert p.mapping == TEMPLATES[template].mapping


def test_given_fields_override_and_mapping_merges_field_by_field() -> None:
    p = passthrough_from(
        config(
            "ringba",
            method="put",
            headers={"Authorization": "Bearer abc"},
            body=None,
            number_mode="dial",
            mapping={"bid": "data.price", "bid_multiplier": 0.9, "seconds": None},
        )
    )
    assert p.method == "PUT"
    assert p.headers == (("Authorization", "Bearer abc"),)
    assert p.body is None
    assert p.number_mode is NumberMode.DIAL
    assert p.mapping == ResponseMapping(
        accepted="bidAmount > `0` && phoneNumber",
        bid="data.price",
        number="phoneNumber",
        seconds=None,
        reason="rejectReason",
        bid_multiplier=0.9,
    )


def test_custom_config_and_round_trip() -> None:
    given = {
        "url": "http://[host].example.com:8080/rtb?cid=[caller_number]",
        "method": "GET",
        "headers": {"X-Key": "k\tv"},
        "content_type": "application/x-www-form-urlencoded",
        "body": "a=[caller_zip]",
        "mapping": {
            "accepted": "re:^OK",
            "accepted_values": ["ok", 1, True],
            "bid": "$.bid",
            "seconds_offset": 15,
        },
    }
    p = passthrough_from(given)
    assert p == Passthrough(
        url=given["url"],
        mapping=ResponseMapping(
            accepted="re:^OK", accepted_values=("ok", "1", "true"), bid="$.bid", seconds_offset=15
        ),
        method="GET",
        headers=(("X-Key", "k\tv"),),
        body="a=[caller_zip]",
        content_type="application/x-www-form-urlencoded",
        dialect="custom",
    )
    assert passthrough_from(passthrough_to_dict(p)) == p
    for name in TEMPLATE_NAMES[1:]:
        templated = passthrough_from(config(name))
        assert passthrough_from(passthrough_to_dict(templated)) == templated


def test_json_bodies_may_hold_unquoted_tokens() -> None:
    p = passthrough_from(config("custom", body='{"age": [age]}', mapping={"bid": "bid"}))
    assert p.body == '{"age": [age]}'


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"template": "vonage"}, "template: unknown template 'vonage'"),
        ({"colour": "red", "extra": 1}, "passthrough: unknown keys colour, extra"),
        ({"url": None}, "url: required"),
        ({"url": "ftp://b.example.com/"}, "url: scheme must be http or https"),
        ({"url": "https:///path"}, "url: needs a host"),
        ({"url": "b.example.com/bid"}, "url: scheme must be http or https"),
        ({"url": "https://b.example.com/\r\nX: y"}, "url: must not contain spaces"),
        ({"url": "https://" + "a" * 2100}, "url: longer than 2048"),
        ({"method": "DELETE"}, "method: must be one of GET, POST, PUT, PATCH"),
        ({"method": 3}, "method: must be one of"),
        ({"headers": ["X: y"]}, "headers: must be an object"),
        ({"headers": {"Bad Name": "v"}}, "headers: invalid header name 'Bad Name'"),
        ({"headers": {"X-Evil\r\n": "v"}}, "headers: invalid header name"),
        ({"headers": {"X-A": "v\r\nSet-Cookie: s"}}, "headers.X-A: value must not contain CR"),
        ({"headers": {"X-A": "v\n"}}, "headers.X-A: value must not contain CR"),
        ({"headers": {"X-A": 5}}, "headers.X-A: value must be a string"),
        ({"body": "x" * (16 * 1024 + 1)}, "body: larger than 16 KiB"),
        ({"body": 12}, "body: must be a string or null"),
        ({"body": '{"a": "[x]"'}, "body: not valid JSON"),
        ({"content_type": "json"}, "content_type: must be a media type"),
        ({"number_mode": "bridge"}, "number_mode: must be one of transfer, dial"),
        ({"mapping": []}, "mapping: must be an object"),
        ({"mapping": {"bid": "x", "price": "y"}}, "mapping: unknown keys price"),
        ({"mapping": {"bid": "a[?"}}, "mapping.bid: invalid JMESPath"),
        ({"mapping": {"number": "re:(unclosed"}}, "mapping.number: invalid regex"),
        ({"mapping": {"bid": 5}}, "mapping.bid: must be a string or null"),
        ({"mapping": {"bid": "b" * 501}}, "mapping.bid: longer than 500"),
        ({"mapping": {"bid": "b", "bid_multiplier": 0}}, "mapping.bid_multiplier"),
        ({"mapping": {"bid": "b", "bid_multiplier": -2}}, "mapping.bid_multiplier"),
        ({"mapping": {"bid": "b", "bid_multiplier": float("inf")}}, "mapping.bid_multiplier"),
        ({"mapping": {"bid": "b", "bid_multiplier": "2"}}, "mapping.bid_multiplier"),
        ({"mapping": {"bid": "b", "bid_multiplier": True}}, "mapping.bid_multiplier"),
        ({"mapping": {"bid": "b", "bid_multiplier": 10**400}}, "mapping.bid_multiplier"),
        ({"mapping": {"bid": "b", "seconds_offset": 1.5}}, "mapping.seconds_offset"),
        ({"mapping": {"bid": "b", "seconds_offset": 10**6}}, "mapping.seconds_offset"),
        ({"mapping": {"bid": "b", "accepted_values": "ok"}}, "mapping.accepted_values"),
        (
            {"mapping": {"bid": "b", "accepted_values": ["ok"]}},
            "mapping.accepted_values: needs mapping.accepted",
        ),
        (
            {"mapping": {"accepted": "a", "accepted_values": [None]}},
            "mapping.accepted_values: must be strings",
        ),
        ({"mapping": {"seconds": "s", "reason": "r"}}, "mapping needs at least one of"),
        ({"mapping": {}}, "mapping needs at least one of accepted, bid, number"),
    ],
)
def test_invalid_configs_name_the_field(given: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"url": "https://b.example.com/bid", "mapping": {"bid": "bid"}}
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        passthrough_from({**base, **given})


def test_config_must_be_an_object() -> None:
    with pytest.raises(ValueError, match=r"^passthrough: must be an object$"):
        passthrough_from(["https://b.example.com"])  # type: ignore[arg-type]


def test_a_template_mapping_can_be_cleared_down_to_nothing() -> None:
    cleared = {"accepted": None, "accepted_values": [], "bid": "", "number": None}
    with pytest.raises(ValueError, match=r"^mapping needs at least one of accepted, bid, number$"):
        passthrough_from(config("callgrid", mapping=cleared))


@pytest.mark.parametrize(
    ("dialect", "url", "release"),
    [
        (
            "callbid",
            "https://down.example/rtbs.json?key=k-1&publisher_id=p",
            "https://down.example/rtbs/u%2F1.json?key=k-1",
        ),
        (
            "retreaver",
            "http://down.example:8080/api/rtbs.json?key=a b",
            "http://down.example:8080/api/rtbs/u%2F1.json?key=a+b",
        ),
        ("callbid", "https://down.example/rtbs.json?publisher_id=p", None),
        ("callbid", "https://down.example/other.json?key=k", None),
        ("ringba", "https://rtb.ringba.com/v1/production/x.json?key=k", None),
    ],
)
def test_release_request_is_built_only_for_chained_rtb_endpoints(
    dialect: str, url: str, release: str | None
) -> None:
    passthrough = Passthrough(url, ResponseMapping(), dialect=dialect)

    built = release_request(passthrough, url, "u/1")

    if release is None:
        assert built is None
    else:
        assert built is not None
        assert (built.method, built.url, built.body) == ("DELETE", release, None)
