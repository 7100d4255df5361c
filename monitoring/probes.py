"""The scheduled health probe of ``/api/qa``: one request, recorded with its verdict.

Whatever the network answers becomes a row; a bad answer is a failed check with its reason,
never an exception out of the schedule.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from integrations.edge_qa import EdgeReport, judge_qa, probe_client, probe_qa
from rollout.models import Environment

from .models import HealthCheck

log = logging.getLogger(__name__)


def probe_headers_for(environment: Environment) -> dict:
    """Extra request headers for this environment's probes (e.g. a monitoring token the worker
    exempts from its rate limit): the global ones, then the environment's own over them.

    They are secrets: they go on the wire and nowhere else (not into rows, pages or logs).
    """
    key = f"{environment.service.name}/{environment.name}"
    return {
        **settings.EDGE_PROBE_HEADERS,
        **settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT.get(key, {}),
    }


def probe(environment: Environment) -> EdgeReport:
    timeout = settings.HTTP_TIMEOUT_SECONDS
    with probe_client(timeout=timeout) as client:
        return probe_qa(
            environment.qa_url,
            client=client,
            headers=probe_headers_for(environment),
            max_seconds=2 * timeout,
        )


def record_check(environment: Environment, report: EdgeReport) -> HealthCheck:
    problems = judge_qa(report, expected_environment=environment.name)
    body = report.body or {}
    header = report.header
    return HealthCheck.objects.create(
        environment=environment,
        verdict=HealthCheck.Verdict.FAILED if problems else HealthCheck.Verdict.OK,
        reason=(problems[0] if problems else "healthy")[:300],
        problems=[problem[:300] for problem in problems[:20]],
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


def run_health_check(environment_id: int) -> HealthCheck | None:
    """Probe one environment now and record the check."""
    environment = Environment.objects.select_related("service").filter(pk=environment_id).first()
    if environment is None:
        return None
    report = probe(environment)
    check = record_check(environment, report)
    if not check.ok:
        log.info("health check of %s failed: %s", environment, check.reason)
    return check


def is_due(environment_id: int, now=None) -> bool:
    """Whether no check was recorded in the last half interval (a redelivered or doubled task
    then records nothing)."""
    now = now or timezone.now()
    recent = now - timedelta(seconds=settings.HEALTH_CHECK_INTERVAL_SECONDS / 2)
    return not HealthCheck.objects.filter(
        environment_id=environment_id, checked_at__gt=recent
    ).exists()
