"""What each object looks like in /api/v1 (api/schemas.py states the shapes), and the lookups
of the objects a path names (404 with a sentence naming what was not found)."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.kv_value import read_settings
from monitoring.models import DriftState
from rollout.models import (
    ConfigChange,
    Decision,
    Environment,
    PercentRequest,
    PhaseRun,
    PreviewCheck,
    PreviewRun,
    Rollout,
)
from rollout.services import phases

from .problems import NotFound


def _name(user) -> str | None:
    return user.get_username() if user else None


def environment_named(service: str, name: str) -> Environment:
    environment = (
        Environment.objects.select_related("service", "desired")
        .filter(service__name=service, name=name)
        .first()
    )
    if environment is None:
        raise NotFound(
            _("There is no environment %(service)s/%(name)s.") % {"service": service, "name": name}
        )
    return environment


def found(rows, public_id, what: str):
    """The row of ``rows`` (a manager or queryset) with this public id, or 404 naming ``what``."""
    row = rows.filter(public_id=public_id).first()
    if row is None:
        raise NotFound(_("There is no %(what)s %(id)s.") % {"what": what, "id": public_id})
    return row


def percent_request(item: PercentRequest) -> dict:
    return {
        "id": item.public_id,
        "environment": reference(item.environment),
        "percent": item.to_percent,
        "from_percent": item.from_percent,
        "tag": item.to_tag,
        "state": item.state,
        "requested_by": item.requested_by.get_username(),
        "decided_by": _name(item.decided_by),
        "decided_at": item.decided_at,
        "note": item.decision_note,
        "reason": item.reason,
        "base_version": item.base_version,
        "superseded_by_version": item.superseded_by.version if item.superseded_by_id else None,
        "requested_at": item.requested_at,
    }


def change(item: ConfigChange) -> dict:
    return {
        "id": item.public_id,
        "environment": reference(item.environment),
        "kind": item.kind,
        "version": item.version,
        "state": item.state,
        "requested_at": item.requested_at,
        "written_at": item.written_at,
        "in_effect_at": item.in_effect_at,
        "requested_by": item.actor_label,
        "approved_by": _name(item.approved_by),
        "reason": item.reason,
        "after": item.after,
        "last_error": item.last_error,
    }


def reference(environment: Environment) -> str:
    """How the API names an environment, in answers as in paths and filters: ``service/name``."""
    return f"{environment.service.name}/{environment.name}"


def reported_deployment(deployment) -> dict:
    return {
        "id": deployment.pk,
        "environment": reference(deployment.environment),
        "version_id": deployment.version_ids[0],
        "message": deployment.message,
        "reported_by": deployment.reported_by.get_username(),
        "reported_at": deployment.seen_at,
        "confirmed_at": deployment.confirmed_at,
    }


def environment_status(environment: Environment) -> dict:
    desired = getattr(environment, "desired", None)
    open_changes = ConfigChange.objects.filter(
        environment=environment, state__in=ConfigChange.OPEN_STATES
    ).order_by("-version")
    pending = PercentRequest.objects.filter(
        environment=environment, state=PercentRequest.State.PENDING
    ).select_related("environment__service", "requested_by", "decided_by")
    run = _open_run(environment)
    return {
        "id": environment.public_id,
        "service": environment.service.name,
        "name": environment.name,
        "url": settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id]),
        "desired": {
            "version": desired.version,
            "percent": desired.canary_percent,
            "tag": desired.canary_tag,
            "emergency": desired.emergency_proxy,
        }
        if desired
        else None,
        "kv": _kv(environment),
        "edge": _edge(environment),
        "drift": _drift(environment),
        "open_changes": [
            {
                "id": item.public_id,
                "kind": item.kind,
                "state": item.state,
                "version": item.version,
                "requested_at": item.requested_at,
            }
            for item in open_changes
        ],
        "pending_requests": [percent_request(item) for item in pending],
        "current_phase": {
            "id": run.public_id,
            "rollout_id": run.rollout.public_id,
            "phase": run.phase.tag,
            "percent": run.phase.percent,
            "state": run.state,
            "window_ends_at": run.window_ends_at,
        }
        if run
        else None,
    }


def _open_run(environment: Environment) -> PhaseRun | None:
    rollout = phases.active_rollout(environment)
    run = phases.open_run(rollout)
    if run is not None:
        # As the pages show it: a window whose end has passed is "decision due".
        phases.as_of(timezone.now(), rollout, [run])
    return run


def _kv(environment: Environment) -> dict | None:
    if environment.last_kv_read_at is None:
        return None
    shown = {
        "percent": None,
        "tag": None,
        "emergency": None,
        "read_at": environment.last_kv_read_at,
    }
    if environment.last_kv_error:
        return {**shown, "error": environment.last_kv_error}
    if environment.last_kv_missing:
        return {**shown, "error": "the key is missing in KV"}
    value = read_settings(environment.last_kv_raw)
    if value is None:
        return {**shown, "error": "KV holds no valid config"}
    return {
        **shown,
        "percent": value.canary_percent,
        "tag": value.canary_tag,
        "emergency": value.emergency_proxy,
    }


def _edge(environment: Environment) -> dict | None:
    if environment.last_edge_read_at is None:
        return None
    report = environment.last_edge_report or {}
    canary = report.get("canary") or {}
    return {
        "percent": canary.get("percent"),
        "tag": canary.get("tag"),
        "emergency": canary.get("emergency_proxy"),
        "reason": canary.get("reason"),
        "read_at": environment.last_edge_read_at,
        "error": report.get("error"),
    }


def _drift(environment: Environment) -> dict:
    drift = DriftState.objects.filter(environment=environment).first()
    if drift is None or drift.kv_state == DriftState.KV.UNKNOWN:
        return {"state": "unknown", "detail": "not checked yet"}
    in_sync = drift.kv_state == DriftState.KV.IN_SYNC and drift.edge_state in (
        DriftState.Edge.IN_SYNC,
        DriftState.Edge.PROPAGATING,
    )
    words = f"KV {drift.get_kv_state_display()}, edge {drift.get_edge_state_display()}"
    detail = f"{words}: {drift.detail_words}" if drift.detail_words else words
    return {"state": "in_sync" if in_sync else "drift", "detail": detail}


def preview_run(run: PreviewRun) -> dict:
    checks = list(run.checks.all())
    finished = [check for check in checks if check.state in PreviewCheck.FINISHED_STATES]
    # A run the suite could not finish (no desired config, a crash) is neither GO nor NO-GO: a
    # pipeline must tell "the build is bad" from "the suite did not run".
    errored = bool(run.error) and run.is_finished
    verdict = ("GO" if run.passed else "NO-GO") if run.is_finished and not errored else None
    return {
        "id": run.public_id,
        "environment": reference(run.environment),
        "build": run.build,
        "state": "error" if errored else run.state,
        "verdict": verdict,
        "progress": {"done": len(finished), "total": len(checks)},
        "checks": [
            {
                "name": check.name,
                "state": check.state,
                "detail": check.said,
            }
            for check in checks
        ],
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "report_url": settings.SITE_URL + reverse("rollout:preview_report", args=[run.public_id]),
    }


def phase_run(run: PhaseRun) -> dict:
    decision = run.decisions.exclude(state=Decision.State.OPEN).order_by("-created_at").first()
    return {
        "id": run.public_id,
        "rollout_id": run.rollout.public_id,
        "environment": reference(run.rollout.environment),
        "phase": run.phase.tag,
        "percent": run.phase.percent,
        "window_number": run.window_number,
        "state": run.state,
        "started_at": run.started_at,
        "in_effect_at": run.in_effect_at,
        "window_started_at": run.in_effect_at,
        "window_ends_at": run.window_ends_at,
        "recommendation": decision.recommendation if decision else None,
        "build": phases.build_of(run),
    }


def rollout(item: Rollout, *, with_phases: bool = False) -> dict:
    shown = {
        "id": item.public_id,
        "environment": reference(item.environment),
        "build": item.build,
        "state": item.state,
        "created_at": item.created_at,
        "finished_at": item.finished_at,
        "phases": [],
    }
    if with_phases:
        runs = item.phase_runs.select_related("phase", "rollout__environment__service")
        shown["phases"] = [phase_run(run) for run in runs.order_by("started_at", "id")]
    return shown


def decision(item: Decision) -> dict:
    return {
        "id": item.public_id,
        "phase_id": item.phase_run.public_id,
        "verdict": item.get_outcome_display(),
        "state": item.state,
        "recommendation": str(Decision.Outcome(item.recommendation).label),
        "evidence_digest": item.evidence_digest,
        "created_at": item.created_at,
        "effective_at": item.effective_at,
        "signatures": [
            {
                "signer": signature.signer.get_username(),
                "role": signature.role,
                "signed_at": signature.signed_at,
                "valid": signature.invalidated_at is None,
            }
            for signature in item.signatures.select_related("signer")
        ],
    }
