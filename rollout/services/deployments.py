"""The build under the phase: which Worker version serves each environment, and what happens when
it changes while a phase's window is open.

The one scheduled reader of Cloudflare (monitoring/observation.py) hands every read of the
script's deployments to ``record_read``, which records the deployment serving traffic, confirms a
pipeline's report of it, and flags a new one inside an open observation window (a
``BuildChange``: audited and announced in #deployments). The window's evidence then says "build
changed at T (old → new)" and cannot recommend GO until a person restarts the window from the new
build's time or keeps it with a reason (``restart_window`` and ``keep_window``).

A pipeline may say "version X deployed" right after ``wrangler deploy``
(``record_reported_deployment``), so the preview suite can start at once; the next read confirms
it against Cloudflare.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.worker_deployments import Deployment, DeploymentsError

from .. import limits
from ..models import (
    AuditEntry,
    BuildChange,
    Decision,
    Environment,
    PhaseRun,
    Rollout,
    WorkerDeployment,
)
from ..models.deployments import describe_versions
from ..notifications import announce_build_change
from ..permissions import require
from ..signals import observation_wanted
from . import audit, phases

SYSTEM = "worker-deployments"
# A Worker version id is a UUID; a typed or reported one is held to a plain shape.
VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NO_DEPLOYMENT = "empty"


class DeploymentRefused(phases.TransitionRefused):
    """The act cannot be done as asked; the message says why."""


# --- what is live ---------------------------------------------------------------------------------


def current_build(environment: Environment) -> WorkerDeployment | None:
    """The deployment the next preview suite verifies: the one Cloudflare serves, or a pipeline's
    report of a newer one that no read has confirmed yet."""
    live = environment.live_deployment
    reported = (
        WorkerDeployment.objects.filter(
            environment=environment, via=WorkerDeployment.Via.REPORTED, confirmed_at__isnull=True
        )
        .select_related("reported_by")
        .first()
    )
    if reported is not None and (live is None or reported.seen_at > live.seen_at):
        return reported
    return live


def same_versions(one: WorkerDeployment | None, other: WorkerDeployment | None) -> bool:
    if one is None or other is None:
        return one is other
    return _versions_key(one.versions) == _versions_key(other.versions)


def _versions_key(versions: list[dict]) -> list[tuple]:
    return sorted((v["version_id"], float(v["percentage"])) for v in versions)


# --- the scheduled read ---------------------------------------------------------------------------


def record_read(
    environment: Environment, result: list[Deployment] | DeploymentsError, *, now: datetime
) -> WorkerDeployment | None:
    """Record one read of the environment's deployments: the failure as a state the pages show,
    or the deployment serving traffic (the first listed). Returns the live deployment."""
    if isinstance(result, DeploymentsError):
        retry_at = None
        if result.retry_after:
            retry_at = now + timedelta(seconds=result.retry_after)
        _record_state(environment, now, result.kind, result.message, retry_at)
        return environment.live_deployment
    if not result:
        message = f"Cloudflare lists no deployment of {environment.worker_script_name}"
        _record_state(environment, now, NO_DEPLOYMENT, message, None)
        return environment.live_deployment
    _record_state(environment, now, "", "", None)
    live = _seen(environment, result[0], now)
    previous_id = environment.live_deployment_id
    if previous_id == live.pk:
        return live
    # Compare-and-set: of two reads that saw the same new deployment, one records the change.
    if not Environment.objects.filter(pk=environment.pk, live_deployment_id=previous_id).update(
        live_deployment=live
    ):
        return live
    previous = WorkerDeployment.objects.filter(pk=previous_id).first()
    environment.live_deployment = live
    _confirm_reports(environment, live, now)
    audit.record(
        action="worker.deployed",
        system=SYSTEM,
        environment=environment,
        obj=live,
        before={"build": previous.describe(full=True)} if previous else None,
        after={"build": live.describe(full=True), "deployment": live.deployment_id},
        detail=_deployment_words(live),
    )
    _check_open_window(environment, previous, live, now)
    return live


def _record_state(environment, now, kind: str, message: str, retry_at) -> None:
    fields = {
        "deployments_read_at": now,
        "deployments_error_kind": kind,
        "deployments_error": message[:2000],
        "deployments_retry_at": retry_at,
    }
    Environment.objects.filter(pk=environment.pk).update(**fields)
    for name, value in fields.items():
        setattr(environment, name, value)


def _seen(environment: Environment, deployment: Deployment, now: datetime) -> WorkerDeployment:
    found = WorkerDeployment.objects.filter(
        environment=environment, deployment_id=deployment.id
    ).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return WorkerDeployment.objects.create(
                environment=environment,
                via=WorkerDeployment.Via.READ,
                deployment_id=deployment.id,
                created_on=deployment.created_on,
                source=deployment.source,
                strategy=deployment.strategy,
                versions=[version.as_dict() for version in deployment.versions],
                message=limits.cut(deployment.message, limits.NOTE, "cut here"),
                triggered_by=deployment.triggered_by,
                author_email=deployment.author_email,
                seen_at=now,
            )
    except IntegrityError:  # recorded by a parallel read meanwhile
        return WorkerDeployment.objects.get(environment=environment, deployment_id=deployment.id)


def _confirm_reports(environment: Environment, live: WorkerDeployment, now: datetime) -> None:
    for reported in WorkerDeployment.objects.filter(
        environment=environment, via=WorkerDeployment.Via.REPORTED, confirmed_at__isnull=True
    ):
        if set(reported.version_ids) <= set(live.version_ids):
            WorkerDeployment.objects.filter(pk=reported.pk, confirmed_at__isnull=True).update(
                confirmed_at=now
            )


def _deployment_words(deployment: WorkerDeployment) -> str:
    words = f"version {describe_versions(deployment.versions, full=True)}"
    if deployment.created_on:
        words += f" deployed {deployment.created_on:%Y-%m-%d %H:%M} UTC"
    words += f" by {deployment.author}"
    if deployment.message:
        words += f": {deployment.message[:300]}"
    return words


def _check_open_window(
    environment: Environment,
    previous: WorkerDeployment | None,
    live: WorkerDeployment,
    now: datetime,
) -> None:
    """A new build while a phase observes: record it as the window's, or flag the change."""
    run = phases.open_run(phases.active_rollout(environment))
    if run is None or run.state not in (PhaseRun.State.OBSERVING, PhaseRun.State.DECISION_DUE):
        return
    if run.build_deployment_id is None:
        # The window began before its build could be read: the first read names it.
        PhaseRun.objects.filter(pk=run.pk, build_deployment__isnull=True).update(
            build_deployment=live
        )
        return
    if same_versions(previous or run.build_deployment, live):
        return
    changed_at = max(live.created_on or now, run.in_effect_at)
    if changed_at >= run.window_ends_at:
        return  # after the window's end: not under its evidence
    change, created = BuildChange.objects.get_or_create(
        phase_run=run,
        after=live,
        defaults={"before": previous, "changed_at": changed_at, "detected_at": now},
    )
    if not created:
        return
    audit.record(
        action="phase.build_changed",
        system=SYSTEM,
        environment=environment,
        obj=run,
        before={"build": change.before.describe(full=True) if change.before else None},
        after={"build": change.after.describe(full=True)},
        outcome=AuditEntry.Outcome.PENDING,
        detail=f"{run}: {build_change_words(change)}; GO waits until a person restarts the "
        "window or keeps it with a reason",
    )
    announce_build_change(change)


def build_change_words(change: BuildChange) -> str:
    """ "build changed at T (old → new)", with whole version ids: for the audit trail."""
    old = change.before.describe(full=True) if change.before else "unknown"
    return (
        f"build changed at {change.changed_at:%Y-%m-%d %H:%M} UTC "
        f"({old} → {change.after.describe(full=True)})"
    )


# --- a person's choice ----------------------------------------------------------------------------


def keep_window(
    change: BuildChange, *, reason: str, person, now: datetime, request=None
) -> BuildChange:
    """Keep the window's evidence across the build change, with the reason on record."""
    run = change.phase_run
    environment = run.rollout.environment
    require(person, "rollout.observe_phase", environment=environment, obj=run, request=request)
    with _choice_refusal_audited(change, person, request):
        reason = reason.strip()
        if not reason:
            raise DeploymentRefused(
                _("Say why the window's evidence still holds for the new build.")
            )
        _check_choosable(change)
        if not BuildChange.objects.filter(pk=change.pk, resolution="").update(
            resolution=BuildChange.Resolution.KEPT,
            resolved_by=person,
            resolved_at=now,
            reason=reason,
        ):
            raise DeploymentRefused(_("Someone else chose for this build change meanwhile."))
    change.refresh_from_db()
    audit.record(
        action="phase.build_kept",
        actor=person,
        environment=environment,
        obj=run,
        reason=reason,
        detail=f"{run}: {build_change_words(change)}; the window is kept",
        request=request,
    )
    return change


def restart_window(
    change: BuildChange, *, reason: str, person, now: datetime, request=None
) -> PhaseRun:
    """Start the phase's window again from the newest build's time: the window so far is closed
    as restarted, and a new window of the same phase observes the new build alone."""
    run = change.phase_run
    environment = run.rollout.environment
    require(person, "rollout.observe_phase", environment=environment, obj=run, request=request)
    with _choice_refusal_audited(change, person, request):
        _check_choosable(change)
        return _restart(run, reason=reason.strip(), person=person, now=now, request=request)


def _restart(run: PhaseRun, *, reason: str, person, now: datetime, request) -> PhaseRun:
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=run.rollout_id)
        run = PhaseRun.objects.select_related("phase").get(pk=run.pk)
        if run.decisions.filter(state=Decision.State.OPEN).exists():
            raise DeploymentRefused(
                _("A decision on this window is collecting signatures: withdraw it first.")
            )
        newest = run.build_changes.filter(resolution="").order_by("-changed_at", "-id").first()
        if newest is None:
            raise DeploymentRefused(_("No build change of this window waits for a choice."))
        if not PhaseRun.objects.filter(pk=run.pk, state=run.state).update(
            state=PhaseRun.State.RESTARTED
        ):
            raise DeploymentRefused(
                _("%(run)s moved on meanwhile: reload the page.") % {"run": run}
            )
        restarted = phases.next_window(
            rollout,
            run,
            person=person,
            now=now,
            in_effect_at=newest.changed_at,
            build=newest.after,
        )
        run.build_changes.filter(resolution="").update(
            resolution=BuildChange.Resolution.RESTARTED,
            resolved_by=person,
            resolved_at=now,
            reason=reason,
            restarted_as=restarted,
        )
        audit.record(
            action="phase.window_restarted",
            actor=person,
            environment=rollout.environment,
            obj=restarted,
            before={"window": run.window_number, "build": newest.old_build},
            after={"window": restarted.window_number, "build": newest.new_build},
            reason=reason,
            detail=f"{run}: {build_change_words(newest)}; {restarted} observes the new build "
            f"from {newest.changed_at:%Y-%m-%d %H:%M} UTC",
            request=request,
        )
    return restarted


def _choice_refusal_audited(change: BuildChange, person, request):
    """A refused choice is audited once, after its transaction rolled back, whoever called."""
    run = change.phase_run
    return phases.refusal_audited(
        "phase.build_change_refused",
        person=person,
        environment=run.rollout.environment,
        obj=run,
        request=request,
    )


def _check_choosable(change: BuildChange) -> None:
    change.refresh_from_db()
    if not change.is_open:
        who = change.resolved_by.get_username() if change.resolved_by else "someone"
        raise DeploymentRefused(
            _("This build change was already answered (%(resolution)s by %(who)s).")
            % {"resolution": change.get_resolution_display(), "who": who}
        )
    if change.phase_run.state not in (PhaseRun.State.OBSERVING, PhaseRun.State.DECISION_DUE):
        raise DeploymentRefused(
            _("%(phase_run)s is %(state)s: nothing to choose.")
            % {"phase_run": change.phase_run, "state": change.phase_run.get_state_display()}
        )


# --- a pipeline's report --------------------------------------------------------------------------


def record_reported_deployment(
    environment: Environment, version_id: str, message: str, actor, request=None
) -> WorkerDeployment:
    """A pipeline says "version X is deployed" right after ``wrangler deploy``: recorded (and
    audited) as a reported deployment, which the preview suite may verify at once and the next
    read of Cloudflare confirms. An observation is asked for at once rather than at the next
    beat. Refusals (a bad version id, a message too long) are audited and raised."""
    require(actor, "rollout.request_change", environment=environment, request=request)
    version_id = (version_id or "").strip()
    message = (message or "").strip()
    refusal = ""
    if not VERSION_ID.fullmatch(version_id):
        refusal = (
            "A version id is 1 to 64 letters, digits, dots, dashes or underscores, e.g. the "
            "Version ID wrangler printed."
        )
    elif len(message) > limits.NOTE:
        refusal = f"The message is at most {limits.NOTE:,} characters."
    if refusal:
        audit.record(
            action="worker.report_refused",
            actor=actor,
            environment=environment,
            outcome=AuditEntry.Outcome.REFUSED,
            detail=refusal,
            request=request,
        )
        raise DeploymentRefused(refusal)
    now = timezone.now()
    live = environment.live_deployment
    confirmed = live is not None and version_id in live.version_ids
    with transaction.atomic():
        reported = WorkerDeployment.objects.create(
            environment=environment,
            via=WorkerDeployment.Via.REPORTED,
            versions=[{"version_id": version_id, "percentage": 100.0}],
            message=message,
            reported_by=actor,
            seen_at=now,
            confirmed_at=now if confirmed else None,
        )
        audit.record(
            action="worker.reported",
            actor=actor,
            environment=environment,
            obj=reported,
            after={"version_id": version_id},
            reason=message,
            detail=f"version {version_id} reported deployed"
            + ("; Cloudflare already serves it" if confirmed else "; the next read confirms it"),
            request=request,
        )
        if not confirmed:
            transaction.on_commit(
                partial(
                    observation_wanted.send,
                    sender=WorkerDeployment,
                    environment_id=environment.pk,
                    delay=0,
                )
            )
    return reported
