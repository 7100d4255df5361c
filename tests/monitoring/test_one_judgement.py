"""The health check and the preview suite judge an /api/qa answer by the same rules
(``edge_qa.judge_qa``): the same malformed answer from the misbehaving edge gives both the same
reasons, each once."""

import time

import pytest

from monitoring.observation import observe
from rollout.services import preview as preview_suite
from tests.monitoring.conftest import misbehaving_target

pytestmark = pytest.mark.django_db

MALFORMED = [
    ("/no-header", ["no X-Pix-Canary header"]),
    ("/garbled-header", ["X-Pix-Canary header 'native please' does not parse (no cohort)"]),
    (
        "/bad-header",
        [
            "X-Pix-Canary header '1;tag=B2a;cohort=canary;reason=sampled' does not parse "
            "(cohort 'canary' is not native or proxy)"
        ],
    ),
    (
        "/cohort-mismatch",
        [
            "the X-Pix-Canary header says cohort=native but the body says cohort=proxy",
            "the _canary_cohort cookie says proxy but the X-Pix-Canary header says cohort=native",
        ],
    ),
    (
        "/no-cookie",
        ["no _canary_cohort cookie set, expected _canary_cohort=proxy to keep the client in its "
         "cohort"],
    ),
]  # fmt: skip


def checked(environment, misbehaving, path):
    target = misbehaving_target(environment, misbehaving, path)
    return observe(environment.pk).check, target


@pytest.mark.parametrize("path, problems", MALFORMED, ids=[path for path, _ in MALFORMED])
def test_the_health_check_and_the_qa_structure_check_give_the_same_reasons(
    misbehaving, production, path, problems
):
    check, target = checked(production, misbehaving, path)
    structure = preview_suite.check_qa_structure(target, time.monotonic() + 10)

    assert check.verdict == "failed" and check.problems == problems
    assert not structure.passed and structure.reason == "; ".join(problems)


@pytest.mark.parametrize("path", ["/no-header", "/garbled-header", "/cohort-mismatch"])
def test_a_routing_check_gives_the_health_checks_first_reason(misbehaving, production, path):
    check, target = checked(production, misbehaving, path)
    report, _ = preview_suite.probe_once(target, headers={})
    # /cohort-mismatch's header routes as expected here, so what fails is its body.
    routing = preview_suite.judge_routing(
        report, expect=("native", "sampled"), hint="unexpected routing", evidence={}
    )

    assert not routing.passed and routing.reason == check.reason


def test_only_the_qa_structure_check_expects_a_fresh_client_to_be_sampled(misbehaving, production):
    check, target = checked(production, misbehaving, "/cookie-for-a-fresh-client")
    structure = preview_suite.check_qa_structure(target, time.monotonic() + 10)

    assert check.verdict == "ok"  # a health probe judges health, not routing
    assert not structure.passed and structure.reason == (
        "a fresh client (no cookie, no X-Canary header) came back with reason=cookie, "
        "expected reason=sampled"
    )
