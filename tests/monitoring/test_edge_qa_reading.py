"""Reading the edge's answers: Retry-After in both forms, the cohort cookie, the /api/qa body."""

import time
from email.utils import formatdate

import httpx
import pytest

from integrations.edge_qa import (
    EdgeReport,
    cohort_cookie,
    judge_qa,
    parse_canary_header,
    parse_retry_after,
    validate_qa_body,
)
from tests.monitoring.conftest import GOOD_HEADER, good_document


@pytest.mark.parametrize(
    "value, seconds",
    [("3", 3.0), (" 1.5 ", 1.5), ("0", 0.0), ("-4", 0.0), ("86400", 60.0), ("soon", None),
     ("", None), (None, None), ("nan", None)],
)  # fmt: skip
def test_retry_after_in_seconds(value, seconds):
    assert parse_retry_after(value) == seconds


def test_retry_after_as_an_http_date():
    in_ten = formatdate(time.time() + 10, usegmt=True)
    assert 8 <= parse_retry_after(in_ten) <= 10
    assert parse_retry_after(formatdate(time.time() - 100, usegmt=True)) == 0.0


def test_the_cohort_cookie_among_several():
    headers = httpx.Headers(
        [
            ("set-cookie", "session=abc; Path=/"),
            ("set-cookie", "_canary_cohort=native; Max-Age=86400; Path=/; HttpOnly"),
        ]
    )
    assert cohort_cookie(headers) == "native"
    # A later cookie of the same name replaces the earlier one, as in a browser.
    twice = httpx.Headers(
        [("set-cookie", "_canary_cohort=native"), ("set-cookie", "_canary_cohort=proxy")]
    )
    assert cohort_cookie(twice) == "proxy"
    assert cohort_cookie(httpx.Headers([("set-cookie", "x_canary_cohort=proxy")])) is None
    assert cohort_cookie(httpx.Headers()) is None


def test_a_good_document_has_no_problems():
    assert validate_qa_body(good_document(), expected_environment="production") == []
    # Unknown extra keys are the edge's business.
    assert validate_qa_body(good_document(version="2.1"), expected_environment=None) == []


def test_every_problem_is_named():
    body = good_document(
        status=7, canary__percent=True, canary__cohort="canary", health__database=None
    )
    del body["environment"]
    assert validate_qa_body(body, expected_environment="production") == [
        "'status' is int, expected a string",
        "body lacks 'environment'",
        "'canary.percent' is True, expected an integer 0–100",
        "'canary.cohort' is 'canary', expected \"native\" or \"proxy\"",
        "'health.database' is null, expected a string",
    ]


def test_a_huge_value_is_shortened_in_the_reason():
    body = good_document(canary__tag=["x" * 10_000])
    (problem,) = validate_qa_body(body, expected_environment="production")
    assert len(problem) < 120 and problem.endswith("..., expected a string")


def answer(body=None, header=GOOD_HEADER, cookie="proxy") -> EdgeReport:
    return EdgeReport(
        url="http://edge.test/api/qa",
        status_code=200,
        header_raw=header,
        header=parse_canary_header(header),
        body=body or good_document(),
        cookie_cohort=cookie,
    )


def test_a_good_answer_is_healthy():
    assert judge_qa(answer(), expected_environment="production") == []


def test_header_and_body_must_give_the_same_reason():
    body = good_document(canary__reason="cookie")
    assert judge_qa(answer(body), expected_environment="production") == [
        "the X-Pix-Canary header says reason=sampled but the body says reason=cookie"
    ]


def test_a_body_cohort_outside_the_contract_is_reported_once():
    body = good_document(canary__cohort="canary")
    assert judge_qa(answer(body), expected_environment="production") == [
        "'canary.cohort' is 'canary', expected \"native\" or \"proxy\""
    ]


def test_a_cookie_that_is_no_cohort_is_named():
    assert judge_qa(answer(cookie="banana"), expected_environment="production") == [
        "the _canary_cohort cookie holds 'banana', expected native or proxy"
    ]
