"""Pruning old raw health checks and cohort samples into per-hour summaries.

Each batch is summarised and deleted in one transaction, with the rows locked and locked rows
skipped, so a second prune running beside the first (or after it crashed halfway) never counts
a row twice: a row is either still there and not yet counted, or counted and gone.
"""

from collections import Counter, defaultdict
from datetime import UTC, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import CohortSample, HealthCheck, HourlySummary

BATCH = 2000


def _hour(moment):
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def prune(now=None) -> dict:
    """Summarise and delete raw rows older than ``CHECK_RETENTION_DAYS``."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CHECK_RETENTION_DAYS)
    checks = samples = 0
    while pruned := _prune_checks(cutoff):
        checks += pruned
    while pruned := _prune_samples(cutoff):
        samples += pruned
    return {"checks": checks, "samples": samples, "before": cutoff.isoformat()}


def _prune_checks(cutoff) -> int:
    with transaction.atomic():
        rows = list(
            HealthCheck.objects.filter(checked_at__lt=cutoff)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values("id", "environment_id", "checked_at", "verdict", "reason", "latency_ms")[:BATCH]
        )
        if not rows:
            return 0
        for summary, group in _by_hour(rows, "checked_at"):
            latencies = [row["latency_ms"] for row in group if row["latency_ms"] is not None]
            failed = [row for row in group if row["verdict"] == HealthCheck.Verdict.FAILED]
            warned = [row for row in group if row["verdict"] == HealthCheck.Verdict.WARNING]
            reasons = Counter(summary.failure_reasons)
            reasons.update(row["reason"] for row in failed)
            warning_reasons = Counter(summary.warning_reasons)
            warning_reasons.update(row["reason"] for row in warned)
            HourlySummary.objects.filter(pk=summary.pk).update(
                checks=F("checks") + len(group),
                checks_failed=F("checks_failed") + len(failed),
                checks_warned=F("checks_warned") + len(warned),
                warning_reasons=dict(warning_reasons.most_common(10)),
                latency_count=F("latency_count") + len(latencies),
                latency_sum_ms=F("latency_sum_ms") + sum(latencies),
                latency_max_ms=max([*latencies, summary.latency_max_ms or 0.0])
                if latencies
                else summary.latency_max_ms,
                failure_reasons=dict(reasons.most_common(10)),
            )
        HealthCheck.objects.filter(pk__in=[row["id"] for row in rows]).delete()
        return len(rows)


def _prune_samples(cutoff) -> int:
    with transaction.atomic():
        rows = list(
            CohortSample.objects.filter(
                created_at__lt=cutoff,
                state__in=[CohortSample.State.DONE, CohortSample.State.FAILED],
            )
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values(
                "id",
                "environment_id",
                "created_at",
                "verdict",
                "native",
                "proxy",
                "rate_limited",
            )[:BATCH]
        )
        if not rows:
            return 0
        for summary, group in _by_hour(rows, "created_at"):
            HourlySummary.objects.filter(pk=summary.pk).update(
                samples=F("samples") + len(group),
                samples_failed=F("samples_failed")
                + sum(row["verdict"] == CohortSample.Verdict.FAIL for row in group),
                sample_native=F("sample_native") + sum(row["native"] for row in group),
                sample_proxy=F("sample_proxy") + sum(row["proxy"] for row in group),
                sample_rate_limited=F("sample_rate_limited")
                + sum(row["rate_limited"] for row in group),
            )
        CohortSample.objects.filter(pk__in=[row["id"] for row in rows]).delete()
        return len(rows)


def _by_hour(rows: list[dict], at: str):
    """The rows of each environment and hour (by their time ``at``), each group with the hour's
    summary row."""
    groups = defaultdict(list)
    for row in rows:
        groups[(row["environment_id"], _hour(row[at]))].append(row)
    for (environment_id, hour), group in groups.items():
        yield _summary(environment_id, hour), group


def _summary(environment_id, hour) -> HourlySummary:
    """The hour's summary row, locked for this transaction (created if it is the first)."""
    HourlySummary.objects.get_or_create(environment_id=environment_id, hour=hour)
    return HourlySummary.objects.select_for_update().get(environment_id=environment_id, hour=hour)
