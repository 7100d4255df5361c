"""Reading the edge's answers: Retry-After in both forms, the cohort cookie, the /api/qa body."""

import time
from email.utils import formatdate

import httpx
import pytest

from integrations.edge_qa import cohort_cookie, parse_retry_after, validate_qa_body
from tests.monitoring.conftest import good_document


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
