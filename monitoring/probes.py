"""The health check: what the observation's request to ``/api/qa`` showed, with its verdict.

Whatever the network answers becomes a row; a bad answer is a failed check with its reason,
never an exception out of the schedule. An answer that works but carries something the
contract does not know (``edge_qa.qa_warnings``) is a warning with its reason, not a failure.
A 429 (or no turn left in our own request budget) is recorded as rate limited: the edge held us
back, it did not fail.
"""

import logging

from integrations.edge import is_rate_limited
from integrations.edge_qa import EdgeReport, judge_qa, qa_warnings
from rollout.models import Environment

from .models import HealthCheck

log = logging.getLogger(__name__)


def record_check(environment: Environment, report: EdgeReport) -> HealthCheck:
    problems = judge_qa(report, expected_environment=environment.name)
    warnings = qa_warnings(report)
    if is_rate_limited(report):
        verdict = HealthCheck.Verdict.RATE_LIMITED
    elif problems:
        verdict = HealthCheck.Verdict.FAILED
    else:
        verdict = HealthCheck.Verdict.WARNING if warnings else HealthCheck.Verdict.OK
    body = report.body or {}
    header = report.header
    check = HealthCheck.objects.create(
        environment=environment,
        verdict=verdict,
        reason=(problems[0] if problems else warnings[0] if warnings else "healthy")[:300],
        problems=[problem[:300] for problem in problems[:20]],
        warnings=[warning[:300] for warning in warnings[:20]],
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
    )
    if not check.ok:
        log.info("health check of %s: %s", environment, check.reason)
    return check


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
