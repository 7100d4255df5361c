"""What monitoring tells the overview needs a person: drift between desired, KV and the edge,
and a newest health check that failed or warns. Handed to rollout's overview as a source
(``rollout.services.attention.look_with``) by ``MonitoringConfig.ready()``."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.translation import gettext as _

from rollout.models import Environment
from rollout.services.attention import Attention

from .models import DriftState, HealthCheck


def needs(environments: list[Environment], now: datetime) -> dict[int, list[Attention]]:
    """Two queries for all the environments: their drift states, their newest checks."""
    found: dict[int, list[Attention]] = defaultdict(list)
    by_id = {environment.pk: environment for environment in environments}
    for drift in DriftState.objects.filter(environment_id__in=by_id):
        if drift.attention:
            found[drift.environment_id].append(_drift(drift, by_id[drift.environment_id]))
    newest = Subquery(
        HealthCheck.objects.filter(environment_id=OuterRef("pk"))
        .order_by("-checked_at", "-id")
        .values("id")[:1]
    )
    newest_ids = Environment.objects.filter(pk__in=by_id).annotate(check=newest).values("check")
    checks = HealthCheck.objects.filter(
        pk__in=newest_ids,
        verdict__in=(HealthCheck.Verdict.FAILED, HealthCheck.Verdict.WARNING),
    )
    for check in checks:
        found[check.environment_id].append(_health(check, by_id[check.environment_id]))
    return found


def _drift(drift: DriftState, environment: Environment) -> Attention:
    if drift.needs_decision:
        what = _("Drift: Workers KV %(kv_state)s — adopt or overwrite") % {
            "kv_state": drift.get_kv_state_display()
        }
        since = drift.external_since
    else:
        what = _("Drift: the edge has %(edge_state)s") % {
            "edge_state": drift.get_edge_state_display()
        }
        since = drift.edge_behind_since
    return Attention(
        kind="drift",
        text=f"{what}. {drift.detail_words}" if drift.detail_words else what,
        url=reverse("monitoring:environment", args=[environment.public_id]),
        level="error",
        since=since,
    )


def _health(check: HealthCheck, environment: Environment) -> Attention:
    failed = check.verdict == HealthCheck.Verdict.FAILED
    return Attention(
        kind="health",
        text=(
            _("Health check failed: %(reason)s") if failed else _("Health check warns: %(reason)s")
        )
        % {"reason": check.reason_words},
        url=reverse("monitoring:environment", args=[environment.public_id]),
        level="error" if failed else "warn",
        since=check.checked_at,
    )
