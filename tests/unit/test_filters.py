"""Tag filters: every operator, normalisation, missing tags, numeric parsing, rule order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbid.domain.filters import first_failing, matches
from callbid.domain.model import FilterOp, TagRule

FAST = settings(database=None, max_examples=150, deadline=None)
Op = FilterOp


def rule(op: FilterOp, *values: str, tag: str = "t") -> TagRule:
    return TagRule(tag, op, values)


@pytest.mark.parametrize(
    ("op", "values", "tag_value", "expected"),
    [
        # equals
        (Op.EQUALS, ("CA",), "CA", True),
        (Op.EQUALS, ("CA",), "NY", False),
        (Op.EQUALS, ("CA",), "CAL", False),
        (Op.EQUALS, ("CA",), "C", False),
        (Op.EQUALS, ("CA",), "", False),
        (Op.EQUALS, ("",), "", True),
        # not_equals
        (Op.NOT_EQUALS, ("CA",), "NY", True),
        (Op.NOT_EQUALS, ("CA",), "CA", False),
        (Op.NOT_EQUALS, ("CA",), "CAL", True),
        # in
        (Op.IN, ("CA", "NY", "TX"), "NY", True),
        (Op.IN, ("CA", "NY", "TX"), "TX", True),
        (Op.IN, ("CA", "NY", "TX"), "FL", False),
        (Op.IN, ("CA", "NY", "TX"), "N", False),
        (Op.IN, ("CA",), "CA", True),
        (Op.IN, (), "CA", False),
        # not_in
        (Op.NOT_IN, ("CA", "NY"), "FL", True),
        (Op.NOT_IN, ("CA", "NY"), "NY", False),
        (Op.NOT_IN, ("CA", "NY"), "CA", False),
        (Op.NOT_IN, (), "CA", True),
        # begins_with
        (Op.BEGINS_WITH, ("900",), "90012", True),
        (Op.BEGINS_WITH, ("900",), "900", True),
        (Op.BEGINS_WITH, ("900",), "19001", False),
        (Op.BEGINS_WITH, ("900",), "90", False),
        (Op.BEGINS_WITH, ("100", "902"), "90210", True),
        (Op.BEGINS_WITH, ("100", "200"), "90210", False),
        # contains
        (Op.CONTAINS, ("insur",), "auto insurance", True),
        (Op.CONTAINS, ("insur",), "insur", True),
        (Op.CONTAINS, ("insur",), "insu", False),
        (Op.CONTAINS, ("solar", "roof"), "new roofing", True),
        (Op.CONTAINS, ("solar", "roof"), "plumbing", False),
        # greater_than
        (Op.GREATER_THAN, ("50",), "51", True),
        (Op.GREATER_THAN, ("50",), "50.01", True),
        (Op.GREATER_THAN, ("50",), "50", False),  # strict
        (Op.GREATER_THAN, ("50",), "49", False),
        (Op.GREATER_THAN, ("9",), "10", True),  # numeric, not lexicographic
        (Op.GREATER_THAN, ("-5",), "-4.5", True),
        (Op.GREATER_THAN, ("1e3",), "1001", True),
        (Op.GREATER_THAN, ("0",), "-1", False),
        # less_than
        (Op.LESS_THAN, ("65",), "64", True),
        (Op.LESS_THAN, ("65",), "64.999", True),
        (Op.LESS_THAN, ("65",), "65", False),  # strict
        (Op.LESS_THAN, ("65",), "66", False),
        (Op.LESS_THAN, ("10",), "9", True),  # numeric, not lexicographic
        (Op.LESS_THAN, ("0",), "-0.5", True),
    ],
)
def test_operator(op: FilterOp, values: tuple[str, ...], tag_value: str, expected: bool) -> None:
    assert matches(rule(op, *values), {"t": tag_value}) is expected


@pytest.mark.parametrize(
    ("tags", "exists"),
    [
        ({"t": "x"}, True),
        ({"t": "0"}, True),
        ({"t": " x "}, True),
        ({"t": ""}, False),
        ({"t": "   "}, False),
        ({"t": "\t\n"}, False),
        ({}, False),
        ({"other": "x"}, False),
    ],
)
def test_exists_and_not_exists(tags: dict[str, str], exists: bool) -> None:
    assert matches(rule(Op.EXISTS), tags) is exists
    assert matches(rule(Op.NOT_EXISTS), tags) is (not exists)


@pytest.mark.parametrize(
    ("op", "values", "tag_value"),
    [
        (Op.EQUALS, ("ca",), "CA"),
        (Op.EQUALS, ("CA",), "ca"),
        (Op.EQUALS, ("Ca",), "cA"),
        (Op.EQUALS, ("CA",), "  CA  "),
        (Op.EQUALS, ("  ca ",), "CA"),
        (Op.EQUALS, ("ca",), "\tCa\n"),
        (Op.EQUALS, ("STRASSE",), "straße"),  # casefold, not just lower
        (Op.IN, ("ca", " ny "), "NY"),
        (Op.IN, ("CA", "NY"), " ny"),
        (Op.BEGINS_WITH, ("Auto",), "  AUTOMOBILE"),
        (Op.BEGINS_WITH, (" auto ",), "automobile"),
        (Op.CONTAINS, ("INSUR",), "Auto Insurance"),
        (Op.CONTAINS, ("  insur ",), "AUTO INSURANCE"),
        (Op.GREATER_THAN, (" 50 ",), " 51 "),
        (Op.LESS_THAN, ("50",), "\t49\n"),
    ],
)
def test_case_insensitive_and_trimmed(
    op: FilterOp, values: tuple[str, ...], tag_value: str
) -> None:
    assert matches(rule(op, *values), {"t": tag_value})


@pytest.mark.parametrize(
    ("op", "values", "tag_value"),
    [
        (Op.NOT_EQUALS, ("ca",), " CA "),
        (Op.NOT_IN, ("ca", "ny"), " Ny"),
    ],
)
def test_negative_ops_normalise_too(op: FilterOp, values: tuple[str, ...], tag_value: str) -> None:
    assert not matches(rule(op, *values), {"t": tag_value})


@pytest.mark.parametrize(
    ("op", "values", "expected"),
    [
        (Op.EQUALS, ("CA",), False),
        (Op.NOT_EQUALS, ("CA",), True),
        (Op.IN, ("CA", "NY"), False),
        (Op.NOT_IN, ("CA", "NY"), True),
        (Op.BEGINS_WITH, ("9",), False),
        (Op.CONTAINS, ("a",), False),
        (Op.EXISTS, (), False),
        (Op.NOT_EXISTS, (), True),
        (Op.GREATER_THAN, ("0",), False),
        (Op.GREATER_THAN, ("-1e9",), False),
        (Op.LESS_THAN, ("0",), False),
        (Op.LESS_THAN, ("1e9",), False),
    ],
)
def test_missing_tag(op: FilterOp, values: tuple[str, ...], expected: bool) -> None:
    """Negative operators pass on a missing tag; positive and numeric ones fail."""
    assert matches(rule(op, *values, tag="caller_state"), {"caller_zip": "90210"}) is expected
    assert matches(rule(op, *values, tag="caller_state"), {}) is expected


def test_tag_name_is_looked_up_exactly() -> None:
    # Tags arrive lower-cased by name and rules are stored lower-cased; the rule names one tag.
    r = TagRule("caller_state", Op.EQUALS, ("CA",))
    assert matches(r, {"caller_state": "CA"})
    assert not matches(r, {"caller_state_x": "CA", "state": "CA"})


@pytest.mark.parametrize("tag_value", ["abc", "", " ", "12abc", "1,000", "$50", "five", "0x10"])
@pytest.mark.parametrize("op", [Op.GREATER_THAN, Op.LESS_THAN])
def test_numeric_ops_fail_on_non_numeric_tag(op: FilterOp, tag_value: str) -> None:
    assert not matches(rule(op, "0"), {"t": tag_value})
    assert not matches(rule(op, "-1e300"), {"t": tag_value})
    assert not matches(rule(op, "1e300"), {"t": tag_value})


@pytest.mark.parametrize("wanted", [(), ("abc",), ("",)])
@pytest.mark.parametrize("op", [Op.GREATER_THAN, Op.LESS_THAN])
def test_numeric_ops_fail_on_non_numeric_or_missing_operand(
    op: FilterOp, wanted: tuple[str, ...]
) -> None:
    assert not matches(rule(op, *wanted), {"t": "5"})


@pytest.mark.parametrize("op", [Op.GREATER_THAN, Op.LESS_THAN])
def test_numeric_ops_are_false_for_nan(op: FilterOp) -> None:
    assert not matches(rule(op, "0"), {"t": "nan"})
    assert not matches(rule(op, "nan"), {"t": "5"})


def test_equals_with_no_value_never_matches_and_not_equals_always_does() -> None:
    assert not matches(rule(Op.EQUALS), {"t": "x"})
    assert matches(rule(Op.NOT_EQUALS), {"t": "x"})


def test_equals_compares_text_not_numbers() -> None:
    assert not matches(rule(Op.EQUALS, "5"), {"t": "5.0"})
    assert matches(rule(Op.EQUALS, "05"), {"t": "05"})


@pytest.mark.parametrize(
    ("rule_", "text"),
    [
        (TagRule("caller_state", Op.IN, ("CA", "NY")), "caller_state in CA,NY"),
        (TagRule("age", Op.GREATER_THAN, ("18",)), "age greater_than 18"),
        (TagRule("email", Op.EXISTS), "email exists"),
        (TagRule("email", Op.NOT_EXISTS), "email not_exists"),
    ],
)
def test_describe(rule_: TagRule, text: str) -> None:
    assert rule_.describe() == text


# --- first_failing ----------------------------------------------------------------------------


STATE_CA = TagRule("caller_state", Op.EQUALS, ("CA",))
AGE_OVER_18 = TagRule("age", Op.GREATER_THAN, ("18",))
HAS_EMAIL = TagRule("email", Op.EXISTS)


def test_first_failing_none_when_all_pass_or_no_rules() -> None:
    tags = {"caller_state": "ca", "age": "30", "email": "a@b.c"}
    assert first_failing((STATE_CA, AGE_OVER_18, HAS_EMAIL), tags) is None
    assert first_failing((), tags) is None
    assert first_failing((), {}) is None


@pytest.mark.parametrize(
    ("rules", "tags", "failing"),
    [
        ((STATE_CA, AGE_OVER_18, HAS_EMAIL), {"caller_state": "NY"}, STATE_CA),
        ((AGE_OVER_18, STATE_CA, HAS_EMAIL), {"caller_state": "NY"}, AGE_OVER_18),
        ((HAS_EMAIL, STATE_CA, AGE_OVER_18), {"caller_state": "NY"}, HAS_EMAIL),
        ((STATE_CA, AGE_OVER_18, HAS_EMAIL), {"caller_state": "CA", "age": "5"}, AGE_OVER_18),
        ((STATE_CA, AGE_OVER_18, HAS_EMAIL), {"caller_state": "CA", "age": "19"}, HAS_EMAIL),
    ],
)
def test_first_failing_is_first_in_order(
    rules: tuple[TagRule, ...], tags: dict[str, str], failing: TagRule
) -> None:
    assert first_failing(rules, tags) is failing


def test_first_failing_accepts_any_iterable_and_stops_early() -> None:
    seen: list[TagRule] = []

    def rules() -> Iterator[TagRule]:
        for r in (HAS_EMAIL, STATE_CA, AGE_OVER_18):
            seen.append(r)
            yield r

    assert first_failing(rules(), {"email": "x", "caller_state": "NY"}) is STATE_CA
    assert seen == [HAS_EMAIL, STATE_CA]


# --- Invariants ------------------------------------------------------------------------------

texts = st.text(alphabet=st.sampled_from("aAbBß \t0123456789.-e"), max_size=6)
value_lists = st.lists(texts, max_size=4).map(tuple)
maybe_tags: st.SearchStrategy[dict[str, str]] = st.one_of(
    st.just({}), texts.map(lambda v: {"t": v})
)


@given(values=value_lists, tags=maybe_tags)
@FAST
def test_in_is_any_of_equals(values: tuple[str, ...], tags: dict[str, str]) -> None:
    expected = any(matches(rule(Op.EQUALS, v), tags) for v in values)
    assert matches(rule(Op.IN, *values), tags) is expected


@given(values=value_lists, tags=maybe_tags)
@FAST
def test_not_in_is_the_negation_of_in(values: tuple[str, ...], tags: dict[str, str]) -> None:
    assert matches(rule(Op.NOT_IN, *values), tags) is not matches(rule(Op.IN, *values), tags)


@given(value=texts, tags=maybe_tags)
@FAST
def test_not_equals_is_the_negation_of_equals(value: str, tags: dict[str, str]) -> None:
    assert matches(rule(Op.NOT_EQUALS, value), tags) is not matches(rule(Op.EQUALS, value), tags)


@given(tags=maybe_tags)
@FAST
def test_not_exists_is_the_negation_of_exists(tags: dict[str, str]) -> None:
    assert matches(rule(Op.NOT_EXISTS), tags) is not matches(rule(Op.EXISTS), tags)


@given(values=value_lists, tags=maybe_tags)
@FAST
def test_begins_with_and_contains_are_any_of(values: tuple[str, ...], tags: dict[str, str]) -> None:
    for op in (Op.BEGINS_WITH, Op.CONTAINS):
        expected = any(matches(rule(op, v), tags) for v in values)
        assert matches(rule(op, *values), tags) is expected
    # What begins with a value also contains it.
    if matches(rule(Op.BEGINS_WITH, *values), tags):
        assert matches(rule(Op.CONTAINS, *values), tags)


@given(
    left=st.floats(allow_nan=False, allow_infinity=False, width=32),
    right=st.floats(allow_nan=False, allow_infinity=False, width=32),
)
@FAST
def test_numeric_ops_agree_with_float_order(left: float, right: float) -> None:
    tags = {"t": repr(left)}
    assert matches(rule(Op.GREATER_THAN, repr(right)), tags) is (left > right)
    assert matches(rule(Op.LESS_THAN, repr(right)), tags) is (left < right)


@given(value=texts, tags=maybe_tags)
@FAST
def test_equals_ignores_case_and_blanks_of_the_tag(value: str, tags: dict[str, str]) -> None:
    changed = {k: f"  {v.upper()}\t" for k, v in tags.items()}
    assert matches(rule(Op.EQUALS, value), changed) is matches(rule(Op.EQUALS, value), tags)
