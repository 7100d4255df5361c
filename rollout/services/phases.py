"""A rollout's life: its states, its phase windows and their check-ins.

Every transition is a conditional update of the row in the state it was read in (so two
workers, or a worker and a page, cannot both make it), and an audit entry. ``advance`` is
idempotent: the beat task ``advance_rollouts`` calls it every minute, and the acts that depend on
an up-to-date state (signing) call it first. Pages never call it: they only read, and
``as_of`` shows a window whose end has passed as "decision due" before the task has recorded it
(the way healthchecks derives a check's status when it is read).

The observation window of a phase counts from the moment its config change was *in effect* at
the edge (``ConfigChange.in_effect_at``, recorded by the KV writer), not from the click.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from ..models import (
    CheckIn,
    ConfigChange,
    Decision,
    DesiredConfig,
    Environment,
    PercentRequest,
    Phase,
    PhaseRun,
    Preflight,
    Rollout,
    WorkerDeployment,
)
from ..models.phases import offset_label
from ..notifications import announce_check_in_due, announce_decision_due
from ..permissions import require
from ..team_language import for_the_record
from ..templatetags.times import in_words
from . import audit

State = Rollout.State

# The runbook's monitoring schedule (phase 5). A check-in keeps its purpose in English; pages and
# messages translate it when they show it. Offsets past the window are left out; the window's
# end is always the last check-in: the decision's full metrics review.
CHECK_INS = [
    (timedelta(0), gettext_noop("Immediate verification: /api/qa, cohort distribution")),
    (timedelta(minutes=30), gettext_noop("First check-in: error rate, latency p50/p90")),
    (timedelta(hours=2), gettext_noop("Stability review: no anomalies, log volume normal")),
    (timedelta(hours=6), gettext_noop("Traffic patterns stable")),
    (timedelta(hours=12), gettext_noop("Overnight: automated alerts, PagerDuty on-call")),
]
DECISION_CHECK_IN = gettext_noop("GO / NO-GO decision: full metrics review")
LAST_CHECK_IN_GRACE = timedelta(hours=2)


class TransitionRefused(Exception):
    """The rollout or the phase window is not in a state that allows this."""


def refusal_audited(action: str, *, person, environment: Environment, obj=None, request=None):
    """Audit a refused transition here, once, whoever called (a page, an API, a command): after
    the transition's own transaction rolled back, so the refusal is all that is written."""
    return audit.refusals_audited(
        action,
        TransitionRefused,
        actor=person,
        environment=environment,
        obj=obj,
        request=request,
    )


# --- the rollout's state -------------------------------------------------------------------------


def active_rollout(environment: Environment) -> Rollout | None:
    return (
        Rollout.objects.filter(environment=environment)
        .exclude(state__in=Rollout.FINISHED_STATES)
        .first()
    )


def open_run(rollout: Rollout | None) -> PhaseRun | None:
    if rollout is None:
        return None
    return (
        rollout.phase_runs.filter(state__in=PhaseRun.OPEN_STATES)
        .select_related("phase", "start_change", "start_request__change")
        .first()
    )


def set_state(
    rollout: Rollout,
    to: str,
    *,
    now: datetime,
    actor=None,
    system: str = "",
    reason: str = "",
    detail: str = "",
    request=None,
) -> bool:
    """Move the rollout from the state it was read in to ``to``; False if it moved meanwhile."""
    before = rollout.state
    if before == to:
        return True
    if to not in Rollout.TRANSITIONS[before]:
        raise TransitionRefused(
            _("A rollout that is %(state)s cannot become %(label)s.")
            % {"state": rollout.get_state_display(), "label": State(to).label}
        )
    fields = {"state": to, "state_changed_at": now}
    if to in Rollout.FINISHED_STATES:
        fields["finished_at"] = now
    if not Rollout.objects.filter(pk=rollout.pk, state=before).update(**fields):
        return False
    for name, value in fields.items():
        setattr(rollout, name, value)
    audit.record(
        action=f"rollout.{to}",
        actor=actor,
        system=system if actor is None else "",
        environment=rollout.environment,
        obj=rollout,
        before={"state": before},
        after={"state": to},
        reason=reason,
        detail=detail,
        request=request,
    )
    return True


def ensure_rollout(environment: Environment, *, person, now: datetime) -> Rollout:
    """The environment's active rollout; a new one (draft) when there is none."""
    rollout = active_rollout(environment)
    if rollout is not None:
        return rollout
    service = environment.service
    rollout = Rollout.objects.create(
        plan=service.plan,
        environment=environment,
        build=service.current_build,
        created_by=person,
        created_at=now,
        state_changed_at=now,
    )
    audit.record(
        action="rollout.created",
        actor=person,
        environment=environment,
        obj=rollout,
        after={"state": rollout.state, "build": rollout.build},
        detail=f"rollout of {service.name} {rollout.build or '(no build named)'} on "
        f"{environment.name}",
    )
    return rollout


def begin(environment: Environment, *, person, now: datetime, request=None) -> Rollout:
    """A release manager opens a rollout of the service's current build (draft); it becomes
    "preview verified" once the preview suite of that build has passed. A refusal is audited
    as ``rollout.refused``."""
    with refusal_audited(
        "rollout.refused", person=person, environment=environment, request=request
    ):
        return _begin(environment, person=person, now=now)


def _begin(environment: Environment, *, person, now: datetime) -> Rollout:
    if not environment.is_production:
        raise TransitionRefused(_("Rollouts run on production; preview has its suite."))
    if not hasattr(environment.service, "plan"):
        raise TransitionRefused(_("The service has no rollout plan (add one in the admin)."))
    if active_rollout(environment) is not None:
        raise TransitionRefused(_("A rollout is already running on this environment."))
    rollout = ensure_rollout(environment, person=person, now=now)
    return advance(rollout, now=now)


def abort(rollout: Rollout, *, person, reason: str, now: datetime, request=None) -> Rollout:
    """End a rollout that has no window running (a running window ends through NO-GO). A refusal
    is audited as ``rollout.refused``."""
    with refusal_audited(
        "rollout.refused",
        person=person,
        environment=rollout.environment,
        obj=rollout,
        request=request,
    ):
        return _abort(rollout, person=person, reason=reason, now=now, request=request)


def _given(text: str, missing: str) -> str:
    """A person's words without surrounding blanks; refused with ``missing`` when there are
    none."""
    text = text.strip()
    if not text:
        raise TransitionRefused(missing)
    return text


def _abort(rollout: Rollout, *, person, reason: str, now: datetime, request) -> Rollout:
    reason = _given(reason, _("Give the reason for aborting the rollout."))
    running = open_run(rollout)
    if running is not None and running.state == PhaseRun.State.WAITING:
        raise TransitionRefused(
            _("%(running)s is starting: reject its approval or let it finish.")
            % {"running": running}
        )
    if running is not None:
        raise TransitionRefused(
            _(
                "%(running)s is under observation: end it with a signed decision "
                "(NO-GO rolls back), not an abort."
            )
            % {"running": running}
        )
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
        if not rollout.is_active:
            raise TransitionRefused(
                _("The rollout is already %(state)s.") % {"state": rollout.get_state_display()}
            )
        set_state(rollout, State.ABORTED, now=now, actor=person, reason=reason, request=request)
    return rollout


def start_refusal(environment: Environment) -> str:
    """Why no phase may start now on this environment (empty when one may): a phase whose
    window is open moves on only through a signed decision."""
    run = open_run(active_rollout(environment))
    if run is None:
        return ""
    if run.state == PhaseRun.State.WAITING:
        return _("%(run)s is already starting: wait for it to take effect.") % {"run": run}
    return _(
        "%(run)s is under observation: the next phase starts after a signed GO "
        "decision (rollout page)."
    ) % {"run": run}


def record_phase_start(
    *, environment: Environment, phase: Phase, result, person, now: datetime, request=None
) -> PhaseRun:
    """A phase was started (its change recorded, or its approval requested): open its window,
    which starts counting once the change is in effect."""
    rollout = ensure_rollout(environment, person=person, now=now)
    if rollout.state == State.DRAFT:
        # The pre-flight let the start through, so the preview suite of this build passed.
        set_state(rollout, State.PREVIEW_VERIFIED, now=now, actor=person, request=request)
    previous = rollout.phase_runs.filter(phase=phase).order_by("-window_number").first()
    run = PhaseRun.objects.create(
        rollout=rollout,
        phase=phase,
        window_number=previous.window_number + 1 if previous else 1,
        started_at=now,
        started_by=person,
        start_change=result if isinstance(result, ConfigChange) else None,
        start_request=result if isinstance(result, PercentRequest) else None,
    )
    audit.record(
        action="phase.started",
        actor=person,
        environment=environment,
        obj=run,
        after={"phase": phase.tag, "percent": phase.percent, "window": run.window_number},
        detail=f"{run}: the {_hours(phase.min_observation)} window starts once the config is in "
        "effect at the edge",
        request=request,
    )
    return run


# --- what a phase is: its build, its actual percent, the rollout's progress ---------------------


def current_run(environment: Environment) -> PhaseRun | None:
    """The environment's newest phase window that took effect: the one the metrics panel's
    "phase" window and the Prometheus phase figures show."""
    return (
        PhaseRun.objects.filter(rollout__environment=environment, in_effect_at__isnull=False)
        .select_related("phase", "rollout")
        .order_by("-in_effect_at", "-id")
        .first()
    )


def build_of(run: PhaseRun) -> str:
    """The build this phase runs: the Worker version(s) Cloudflare served when its window began;
    for a window whose version was not read, the build the pre-flight that started it checked
    (its preview suite's build), else the rollout's."""
    if run.build_deployment_id is not None:
        return run.build_deployment.describe(full=True)
    started = Q(start_change_id=run.start_change_id) if run.start_change_id else Q(pk=None)
    if run.start_request_id:
        started |= Q(start_request_id=run.start_request_id)
    preflight = (
        Preflight.objects.filter(started, environment_id=run.rollout.environment_id)
        .exclude(preview_run=None)
        .select_related("preview_run")
        .first()
    )
    if preflight is not None and preflight.preview_run.build:
        return preflight.preview_run.build
    return run.rollout.build


@dataclass(frozen=True)
class ActualPercent:
    """The environment's percent while a phase's window is open, when it is not the plan's."""

    plan: int
    actual: int
    since: datetime | None
    why: str  # lowered, raised, emergency stop


def actual_percent(run: PhaseRun) -> ActualPercent | None:
    """None when the phase is over or the environment runs the phase's percent."""
    if run.state not in PhaseRun.OPEN_STATES:
        return None
    desired = DesiredConfig.objects.filter(environment_id=run.rollout.environment_id).first()
    differs = against_plan(run.phase, desired)
    if differs is None:
        return None
    change = (
        ConfigChange.objects.filter(environment_id=run.rollout.environment_id)
        .order_by("-version")
        .first()
    )
    since = change and (change.in_effect_at or change.requested_at)
    actual, why = differs
    return ActualPercent(plan=run.phase.percent, actual=actual, since=since, why=why)


def against_plan(phase: Phase, desired: DesiredConfig | None) -> tuple[int, str] | None:
    """(actual percent, why) when the desired config is not the phase's percent: lowered,
    raised or emergency stop; None when it is (or nothing is desired yet)."""
    if desired is None:
        return None
    actual = 0 if desired.emergency_proxy else desired.canary_percent
    if actual == phase.percent:
        return None
    if desired.emergency_proxy:
        return actual, _("emergency stop")
    return actual, "lowered" if actual < phase.percent else "raised"


@dataclass
class ProgressStep:
    """One phase of the plan on the rollout's progress: done, current or next (or later)."""

    phase: Phase
    state: str  # done, current, next, later, not_reached
    run: PhaseRun | None = None
    outcome: str = ""  # the decision in effect of a done phase (GO, NO-GO)
    windows: int = 0


def progress(
    rollout: Rollout, runs=None, *, plan_phases=None, effective=None
) -> list[ProgressStep]:
    """The plan's phases in order, each done (with its outcome), current (its newest window) or
    still to come. ``runs`` as read by the page (with ``as_of`` applied), else read here; a page
    that shows many rollouts (the overview) passes the plan's phases and the effective decisions
    by phase window id, read once for all of them."""
    if runs is None:
        runs = list(rollout.phase_runs.select_related("phase"))
    if effective is None:
        effective = effective_decisions([rollout.pk])
    if plan_phases is None:
        plan_phases = rollout.plan.phases.order_by("position")
    steps = []
    for phase in plan_phases:
        windows = [run for run in runs if run.phase_id == phase.pk]
        newest = max(windows, key=lambda run: run.window_number, default=None)
        if newest is not None and newest.state in PhaseRun.OPEN_STATES:
            step = ProgressStep(phase, "current", newest, windows=len(windows))
        elif newest is not None and newest.pk in effective:
            decision = effective[newest.pk]
            step = ProgressStep(phase, "done", newest, decision.get_outcome_display(), len(windows))
        elif not rollout.is_active:
            step = ProgressStep(phase, "not_reached", newest, windows=len(windows))
        else:
            step = ProgressStep(phase, "later", newest, windows=len(windows))
        steps.append(step)
    if rollout.is_active:
        for step in steps:
            if step.state == "later":
                step.state = "next"
                break
    return steps


def effective_decisions(rollout_ids) -> dict:
    """The decisions in effect of these rollouts' windows, by phase window id (one query)."""
    return {
        decision.phase_run_id: decision
        for decision in Decision.objects.filter(
            phase_run__rollout_id__in=rollout_ids, state=Decision.State.EFFECTIVE
        )
    }


# --- advancing with time -------------------------------------------------------------------------


def as_of(now: datetime, rollout: Rollout | None, runs=()) -> None:
    """Show a rollout and its windows as they are at ``now``, without writing anything: a window
    whose end has passed reads "decision due", and its rollout with it, even before
    ``advance_rollouts`` records the change (and announces it). Only the instances given change,
    in memory."""
    for run in runs:
        if run is None or run.state != PhaseRun.State.OBSERVING or run.window_open(now):
            continue
        run.state = PhaseRun.State.DECISION_DUE
        if rollout is not None and rollout.state == State.OBSERVING:
            rollout.state = State.DECISION_DUE


def advance(rollout: Rollout, *, now: datetime | None = None) -> Rollout:
    """Bring the rollout and its open window up to date with the config changes and the clock."""
    now = now or timezone.now()
    with transaction.atomic():
        rollout = (
            Rollout.objects.select_for_update().select_related("environment").get(pk=rollout.pk)
        )
        if rollout.state == State.DRAFT and _preview_passed(rollout):
            set_state(rollout, State.PREVIEW_VERIFIED, now=now, system="lifecycle")
        run = open_run(rollout)
        if run is not None and run.state == PhaseRun.State.WAITING:
            _follow_start(rollout, run, now)
        if run is not None and run.state == PhaseRun.State.OBSERVING:
            _remind_check_ins(run, now)
        if run is not None and run.state == PhaseRun.State.OBSERVING and not run.window_open(now):
            PhaseRun.objects.filter(pk=run.pk, state=PhaseRun.State.OBSERVING).update(
                state=PhaseRun.State.DECISION_DUE
            )
            run.state = PhaseRun.State.DECISION_DUE
            announce_decision_due(run)
            set_state(
                rollout,
                State.DECISION_DUE,
                now=now,
                system="lifecycle",
                detail=f"{run}: the observation window ended at "
                f"{run.window_ends_at:%Y-%m-%d %H:%M} UTC",
            )
    return rollout


def advance_all(now: datetime | None = None) -> int:
    rollouts = Rollout.objects.exclude(state__in=Rollout.FINISHED_STATES)
    for rollout in rollouts:
        advance(rollout, now=now)
    return len(rollouts)


def _preview_passed(rollout: Rollout) -> bool:
    from .preflight import latest_preview_run

    run = latest_preview_run(rollout.environment)
    return run is not None and run.passed


def _start_change(run: PhaseRun) -> ConfigChange | None:
    if run.start_change is not None:
        return run.start_change
    if run.start_request is not None:
        return run.start_request.change
    return None


def _follow_start(rollout: Rollout, run: PhaseRun, now: datetime) -> None:
    change = _start_change(run)
    if change is not None and change.state == ConfigChange.State.IN_EFFECT:
        begin_window(rollout, run, in_effect_at=change.in_effect_at, now=now)
        return
    request_over = run.start_request is not None and run.start_request.state not in (
        PercentRequest.State.PENDING,
        PercentRequest.State.APPROVED,
    )
    change_over = change is not None and change.state in (
        ConfigChange.State.FAILED,
        ConfigChange.State.SUPERSEDED,
    )
    if request_over or change_over:
        why = (
            _("its approval request was %(lower)s")
            % {"lower": run.start_request.get_state_display().lower()}
            if request_over
            else _("its config change %(lower)s") % {"lower": change.get_state_display().lower()}
        )
        if PhaseRun.objects.filter(pk=run.pk, state=PhaseRun.State.WAITING).update(
            state=PhaseRun.State.CANCELLED
        ):
            run.state = PhaseRun.State.CANCELLED
            audit.record(
                action="phase.cancelled",
                system="lifecycle",
                environment=rollout.environment,
                obj=run,
                outcome=audit.AuditEntry.Outcome.FAILED,
                detail=f"{run} did not start: {why}",
            )


def begin_window(
    rollout: Rollout,
    run: PhaseRun,
    *,
    in_effect_at: datetime,
    now: datetime,
    build: WorkerDeployment | None = None,
):
    """The phase's config is in effect: the window runs from here, with its check-ins, over the
    build given, else the Worker deployment last read serving the environment."""
    ends = in_effect_at + run.phase.min_observation
    if build is None:
        build = (
            Environment.objects.filter(pk=rollout.environment_id)
            .values_list("live_deployment", flat=True)
            .first()
        )
    build_id = getattr(build, "pk", build)
    if not PhaseRun.objects.filter(
        pk=run.pk, state__in=[PhaseRun.State.WAITING, PhaseRun.State.OBSERVING]
    ).update(
        state=PhaseRun.State.OBSERVING,
        in_effect_at=in_effect_at,
        window_ends_at=ends,
        build_deployment_id=build_id,
    ):
        return
    run.state, run.in_effect_at, run.window_ends_at = PhaseRun.State.OBSERVING, in_effect_at, ends
    run.build_deployment_id = build_id
    create_check_ins(run, now=now)
    set_state(
        rollout,
        State.OBSERVING,
        now=now,
        system="lifecycle",
        detail=f"{run} in effect at {in_effect_at:%Y-%m-%d %H:%M:%S} UTC; window until "
        f"{ends:%Y-%m-%d %H:%M} UTC",
    )


def next_window(
    rollout: Rollout,
    run: PhaseRun,
    *,
    person,
    now: datetime,
    in_effect_at: datetime,
    build: WorkerDeployment | None = None,
) -> PhaseRun:
    """A new window of the same phase (after HOLD, or a restart from a new build), counting from
    ``in_effect_at``."""
    following = PhaseRun.objects.create(
        rollout=rollout,
        phase=run.phase,
        window_number=run.window_number + 1,
        started_at=now,
        started_by=person,
    )
    begin_window(rollout, following, in_effect_at=in_effect_at, now=now, build=build)
    return following


def create_check_ins(run: PhaseRun, *, now: datetime) -> None:
    """The runbook's check-ins of a window, recorded at ``now``: one whose slot had already closed
    then (a window counted from an earlier moment) is elapsed, not missed."""
    window = run.phase.min_observation
    slots = [(offset, purpose) for offset, purpose in CHECK_INS if offset < window]
    slots.append((window, DECISION_CHECK_IN))
    for index, (offset, purpose) in enumerate(slots):
        due = run.in_effect_at + offset
        following = slots[index + 1][0] if index + 1 < len(slots) else None
        missed_after = (
            run.in_effect_at + following if following is not None else due + LAST_CHECK_IN_GRACE
        )
        CheckIn.objects.get_or_create(
            phase_run=run,
            offset=offset,
            defaults={
                "label": for_the_record(offset_label, offset),
                "purpose": purpose,
                "due_at": due,
                "missed_after": missed_after,
                "recorded_at": now,
            },
        )


def mark_incident(environment: Environment, *, change: ConfigChange) -> None:
    """An emergency stop hit the open window of the environment's rollout (if any)."""
    run = open_run(active_rollout(environment))
    if run is None or run.incident_hit:
        return
    PhaseRun.objects.filter(pk=run.pk).update(incident_hit=True)
    audit.record(
        action="phase.incident_hit",
        actor=change.requested_by,
        system=change.requested_by_system or "",
        environment=environment,
        obj=run,
        detail=f"emergency stop (change version {change.version}) during {run}: {change.reason}",
    )


# --- check-ins -----------------------------------------------------------------------------------


def _remind_check_ins(run: PhaseRun, now: datetime) -> None:
    """Remind #deployments of each check-in when it falls due, once, as the runbook's schedule
    had people set reminders for. Not one already acknowledged or past its slot, and not the
    window's end: that is the decision, announced when it falls due."""
    due = run.check_ins.filter(
        due_at__lte=now,
        due_at__lt=run.window_ends_at,
        missed_after__gt=now,
        acknowledged_at__isnull=True,
        reminded_at__isnull=True,
    )
    for check_in in due:
        if CheckIn.objects.filter(pk=check_in.pk, reminded_at__isnull=True).update(reminded_at=now):
            announce_check_in_due(check_in)


def acknowledge(check_in: CheckIn, *, person, note: str, now: datetime, request=None) -> CheckIn:
    """A person acknowledges a due check-in with what they checked. A refusal is audited as
    ``decision.refused`` on the phase window; a person without the permission is refused first."""
    require(
        person,
        "rollout.observe_phase",
        environment=check_in.phase_run.environment,
        obj=check_in.phase_run,
        request=request,
    )
    with refusal_audited(
        "decision.refused",
        person=person,
        environment=check_in.phase_run.environment,
        obj=check_in.phase_run,
        request=request,
    ):
        return _acknowledge(check_in, person=person, note=note, now=now, request=request)


def _acknowledge(check_in: CheckIn, *, person, note: str, now: datetime, request) -> CheckIn:
    note = _given(note, _("Say in a few words what you checked."))
    if now < check_in.due_at:
        raise TransitionRefused(
            _("%(label)s is due at %(due_at)s, not yet.")
            % {"label": check_in.label_words, "due_at": in_words(check_in.due_at)}
        )
    if not CheckIn.objects.filter(pk=check_in.pk, acknowledged_at__isnull=True).update(
        acknowledged_by=person, acknowledged_at=now, note=note
    ):
        check_in.refresh_from_db()
        raise TransitionRefused(
            _("%(label)s was already acknowledged by %(acknowledged_by)s.")
            % {
                "label": check_in.label_words,
                "acknowledged_by": check_in.acknowledged_by.get_username(),
            }
        )
    check_in.refresh_from_db()
    late = check_in.status(now) == "late"
    audit.record(
        action="phase.check_in",
        actor=person,
        environment=check_in.phase_run.environment,
        obj=check_in.phase_run,
        reason=note,
        detail=f"{check_in.phase_run} {for_the_record(offset_label, check_in.offset)} acknowledged"
        + (" late" if late else ""),
        request=request,
    )
    return check_in


def _hours(duration: timedelta) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours:g} h"
