import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.edge_qa import parse_canary_header


def test_it_reads_the_documented_header():
    header = parse_canary_header("1;tag=B2a;cohort=native;reason=sampled")
    assert (header.version, header.tag, header.cohort, header.reason) == (
        "1",
        "B2a",
        "native",
        "sampled",
    )
    assert header.valid and header.problems == []


def test_order_spaces_and_case_of_keys_do_not_matter():
    header = parse_canary_header(" 1 ; Reason = cookie ;cohort=proxy; TAG=B2b ")
    assert (header.tag, header.cohort, header.reason) == ("B2b", "proxy", "cookie")
    assert header.valid


def test_unknown_keys_are_kept_and_flagged():
    header = parse_canary_header("1;tag=B2a;cohort=native;reason=sampled;pop=FRA")
    assert header.valid
    assert header.unknown == {"pop": "FRA"}
    assert "unknown: key 'pop'" in header.problems


@pytest.mark.parametrize(
    "value, problem",
    [
        (None, "bad header: missing or empty"),
        ("", "bad header: missing or empty"),
        ("1;tag=B2a;reason=sampled", "bad header: no cohort"),
        (
            "1;tag=B2a;cohort=canary;reason=sampled",
            "bad header: cohort 'canary' is not native or proxy",
        ),
        ("2;tag=B2a;cohort=native", "unknown: version '2'"),
        ("1;tag=B2a;cohort=native;reason=magic", "unknown: reason 'magic'"),
        ("1;cohort=native;cohort=proxy", "unknown: cohort given twice"),
    ],
)
def test_odd_headers_are_reported_not_raised(value, problem):
    assert problem in parse_canary_header(value).problems


@given(st.text(max_size=80))
def test_any_text_parses_without_raising(value):
    header = parse_canary_header(value)
    assert header.valid == (
        header.cohort in ("native", "proxy")
        and not any(p.startswith("bad") for p in header.problems)
    )
