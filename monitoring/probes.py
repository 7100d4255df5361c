"""The health check: what the observation's request to ``/api/qa`` showed, with its verdict.

Whatever the network answers becomes a row; a bad answer is a failed check with its reason,
never an exception out of the schedule. An answer that works but carries something the
contract does not know (``edge_qa.qa_warnings``) is a warning with its reason, not a failure.
A 429 (or no turn left in our own request budget) is recorded as rate limited, not failed, and
says whose traffic it was: *ours* when our own budget held the probe back or our cohort sample
was using the edge's rate limit; *not ours* when the edge said 429 while our budget had room
(someone else's traffic shares our client address). Only a 429 that persists, not ours, in
``LIMITED_FAILS_AFTER`` checks in a row, is a failure: the edge then cannot be watched.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from integrations.edge import BUDGET_SPENT, is_rate_limited
from integrations.edge_qa import EdgeReport, judge_qa, qa_warnings
from integrations.said import Said, words_of
from rollout.models import Environment

from .models import CohortSample, HealthCheck

log = logging.getLogger(__name__)
LIMITED_FAILS_AFTER = 4  # checks in a row; about a minute at the observation's interval
HEALTHY = gettext_noop("healthy")


def record_check(environment: Environment, report: EdgeReport) -> HealthCheck:
    problems = judge_qa(report, expected_environment=environment.name)
    warnings = qa_warnings(report)
    limited_by = ""
    if is_rate_limited(report):
        verdict = HealthCheck.Verdict.RATE_LIMITED
        limited_by, reason = whose_limit(environment, report)
        problems = [reason]
        if limited_by == HealthCheck.LimitedBy.NOT_OURS and _persists(environment):
            verdict = HealthCheck.Verdict.FAILED
            problems = [
                Said(
                    gettext_noop("%(reason)s, in %(checks)s checks in a row"),
                    reason=reason,
                    checks=LIMITED_FAILS_AFTER,
                )
            ]
    elif problems:
        verdict = HealthCheck.Verdict.FAILED
    else:
        verdict = HealthCheck.Verdict.WARNING if warnings else HealthCheck.Verdict.OK
    body = report.body or {}
    header = report.header
    reason = problems[0] if problems else warnings[0] if warnings else Said(HEALTHY)
    problems, warnings = problems[:20], warnings[:20]
    check = HealthCheck.objects.create(
        environment=environment,
        verdict=verdict,
        reason=reason[:300],
        problems=[problem[:300] for problem in problems],
        warnings=[warning[:300] for warning in warnings],
        words={
            "reason": words_of(reason),
            "problems": words_of(problems),
            "warnings": words_of(warnings),
        },
        url=environment.qa_url[:300],
        status_code=report.status_code,
        latency_ms=report.latency_ms,
        header_raw=(report.header_raw or "")[:300],
        header=(
            {
                "version": header.version,
                "tag": header.tag,
                "cohort": header.cohort,
                "reason": header.reason,
                "unknown": header.unknown,
                "problems": header.problems,
            }
            if header
            else {}
        ),
        reported_environment=_text(body.get("environment"), 100),
        reported_status=_text(body.get("status"), 100),
        canary=_small(body.get("canary")),
        health=_small(body.get("health")),
        cookie_set=report.cookie_cohort is not None,
        cookie_cohort=(report.cookie_cohort or "")[:32],
        body_excerpt=report.body_excerpt[:300],
        limited_by=limited_by,
    )
    if not check.ok:
        log.info("health check of %s: %s", environment, check.reason)
    return check


def whose_limit(environment: Environment, report: EdgeReport) -> tuple[str, str]:
    """Whose traffic a rate-limited probe ran into, and the reason in words."""
    LimitedBy = HealthCheck.LimitedBy
    if report.error == BUDGET_SPENT:
        return LimitedBy.OURS, Said(
            gettext_noop("rate limited (ours): our edge request budget had no turn left")
        )
    window = timedelta(seconds=settings.EDGE_REQUEST_BUDGET_WINDOW_SECONDS)
    sampling = CohortSample.objects.filter(environment=environment).filter(
        Q(state=CohortSample.State.RUNNING) | Q(finished_at__gte=timezone.now() - window)
    )
    if sampling.exists():
        return LimitedBy.OURS, Said(
            gettext_noop("rate limited (ours): the edge said 429 while our cohort sample ran")
        )
    return LimitedBy.NOT_OURS, Said(
        gettext_noop("rate limited (not ours): the edge said 429 while our budget had room")
    )


def _persists(environment: Environment) -> bool:
    """Whether the checks before this one were all rate limited, not by us."""
    before = list(
        HealthCheck.objects.filter(environment=environment).values_list("verdict", "limited_by")[
            : LIMITED_FAILS_AFTER - 1
        ]
    )
    return len(before) == LIMITED_FAILS_AFTER - 1 and all(
        limited_by == HealthCheck.LimitedBy.NOT_OURS for _, limited_by in before
    )


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _small(value) -> dict:
    """A JSON object from the network, kept only if it is an object and not huge."""
    if not isinstance(value, dict):
        return {}
    return {str(k)[:64]: v if _scalar(v) else repr(v)[:200] for k, v in list(value.items())[:20]}


def _scalar(value) -> bool:
    if isinstance(value, str):
        return len(value) <= 300
    return value is None or isinstance(value, bool | int | float)
