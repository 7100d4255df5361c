"""A rollout's life: the history, a rollout, a phase window and its check-ins, and starting a
phase after its pre-flight."""

from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ..forms.phases import BuildChoiceForm, NoteForm, StartPhaseForm
from ..models import (
    BuildChange,
    CheckIn,
    Decision,
    Environment,
    PercentRequest,
    PhaseRun,
    Rollout,
)
from ..permissions import guarded, shown_to
from ..responses import fragment_or_page, redirect_after_post
from ..services import controls, deployments, evidence, phases, preflight
from .lookups import VIEW_PERMISSION, acting, environment_named_or_404, phase_run_or_404
from .preflight import render_preflight
from .signoff import decision_context


@shown_to(VIEW_PERMISSION)
def rollout_history(request):
    """Every rollout, newest first, with its phase windows and their decisions."""
    rollouts = Rollout.objects.select_related("plan__service", "environment").prefetch_related(
        Prefetch(
            "phase_runs",
            queryset=PhaseRun.objects.select_related("phase").prefetch_related(
                Prefetch("decisions", queryset=Decision.objects.exclude(state="withdrawn"))
            ),
        )
    )
    rollouts = list(rollouts[:100])
    now = timezone.now()
    for rollout in rollouts:
        phases.as_of(now, rollout, rollout.phase_runs.all())
    return render(request, "rollout/decisions/history.html", {"rollouts": rollouts})


@shown_to(VIEW_PERMISSION)
def rollout_detail(request, public_id):
    rollout = get_object_or_404(
        Rollout.objects.select_related("plan__service", "environment"), public_id=public_id
    )
    runs = list(rollout.phase_runs.select_related("phase").prefetch_related("decisions"))
    phases.as_of(timezone.now(), rollout, runs)
    context = {"rollout": rollout, "runs": runs, "progress": phases.progress(rollout, runs)}
    return render(request, "rollout/decisions/rollout.html", context)


@shown_to(VIEW_PERMISSION)
def phase_run(request, public_id):
    run = phase_run_or_404(public_id)
    context = {
        **_timeline_context(run),
        **decision_context(request, run),
        **_build_changes_context(run),
    }
    context.update(build=phases.build_of(run), actual=phases.actual_percent(run))
    return render(request, "rollout/decisions/phase.html", context)


def _build_changes_context(run, **extra) -> dict:
    changes = run.build_changes.select_related("before", "after", "resolved_by", "restarted_as")
    return {
        "run": run,
        "build_changes": list(changes),
        "build_form": extra.pop("build_form", None) or BuildChoiceForm(),
        **extra,
    }


@guarded("rollout.observe_phase")
def answer_build_change(request, public_id):
    """Restart the window from the new build, or keep it with a reason."""
    change = get_object_or_404(
        BuildChange.objects.select_related(
            "phase_run__rollout__environment", "phase_run__phase", "before", "after"
        ),
        public_id=public_id,
    )
    run = change.phase_run
    form = BuildChoiceForm(request.POST)
    if not form.is_valid():
        error = next(iter(form.errors.values()))[0]
        return _render_build_changes(request, run, status=422, build_form=form, error=error)
    data, now = form.cleaned_data, timezone.now()
    try:
        if data["choice"] == "restart":
            restarted = deployments.restart_window(
                change, reason=data["reason"], person=request.user, now=now, request=request
            )
            return redirect_after_post(
                request, reverse("rollout:phase_run", args=[restarted.public_id])
            )
        deployments.keep_window(
            change, reason=data["reason"], person=request.user, now=now, request=request
        )
    except deployments.DeploymentRefused as refused:
        return _render_build_changes(request, run, status=409, error=str(refused))
    return redirect_after_post(request, reverse("rollout:phase_run", args=[run.public_id]))


def _render_build_changes(request, run, *, status, **extra):
    context = _build_changes_context(run, **extra)
    return _phase_fragment(request, run, "rollout/decisions/_build_changes.html", context, status)


@shown_to(VIEW_PERMISSION)
def evidence_check(request, public_id):
    """Polled by the phase page: 204 while the evidence is what the page shows, else a notice.
    Read-only and cheap (every open page asks every 30 s): no state transition here."""
    run = phase_run_or_404(public_id)
    if run.in_effect_at is None or run.state == PhaseRun.State.DECIDED:
        return HttpResponse(status=204)
    if evidence.fingerprint(run, timezone.now()) == request.GET.get("seen", ""):
        return HttpResponse(status=204)
    return render(request, "rollout/decisions/_evidence_changed.html", {"run": run})


@guarded("rollout.request_change")
def begin_rollout(request, public_id):
    environment = get_object_or_404(
        Environment.objects.select_related("service"), public_id=public_id
    )
    try:
        phases.begin(environment, **acting(request))
    except phases.TransitionRefused as refused:
        return _render_rollout_card(request, environment, status=409, error=str(refused))
    return _render_rollout_card(request, environment, success=_("Rollout begun."))


@guarded("rollout.request_change")
def abort_rollout(request, public_id):
    rollout = get_object_or_404(
        Rollout.objects.select_related("environment__service"), public_id=public_id
    )
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _render_rollout_card(
            request, rollout.environment, status=422, error=form.errors["note"][0]
        )
    try:
        phases.abort(rollout, reason=form.cleaned_data["note"], **acting(request))
    except phases.TransitionRefused as refused:
        return _render_rollout_card(request, rollout.environment, status=409, error=str(refused))
    return _render_rollout_card(request, rollout.environment, success=_("Rollout aborted."))


def _render_rollout_card(request, environment, *, status=200, **extra):
    rollout = phases.active_rollout(environment)
    run = phases.open_run(rollout)
    phases.as_of(timezone.now(), rollout, [run])
    context = {"environment": environment, "rollout": rollout, "phase_run": run, **extra}
    page = reverse("rollout:environment", args=[environment.public_id])
    return fragment_or_page(
        request, "rollout/decisions/_rollout_card.html", context, page=page, status=status
    )


def _timeline_context(run, **extra) -> dict:
    now = timezone.now()
    check_ins = [
        (item, item.status(now)) for item in run.check_ins.select_related("acknowledged_by")
    ]
    return {"run": run, "check_ins": check_ins, "now": now, **extra}


def _render_timeline(request, run, *, status=200, **extra):
    return _phase_fragment(
        request, run, "rollout/decisions/_timeline.html", _timeline_context(run, **extra), status
    )


def _phase_fragment(request, run, template: str, context: dict, status: int):
    """A fragment of the phase page, answering a POST made on it."""
    page = reverse("rollout:phase_run", args=[run.public_id])
    return fragment_or_page(request, template, context, page=page, status=status)


@guarded("rollout.observe_phase")
def acknowledge_check_in(request, public_id):
    check_in = get_object_or_404(
        CheckIn.objects.select_related("phase_run__rollout__environment", "phase_run__phase"),
        public_id=public_id,
    )
    run = check_in.phase_run
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _render_timeline(request, run, status=422, error=form.errors["note"][0])
    try:
        phases.acknowledge(check_in, note=form.cleaned_data["note"], **acting(request))
    except phases.TransitionRefused as refused:
        return _render_timeline(request, run, status=409, error=str(refused))
    return _render_timeline(
        request, run, success=_("%(label)s acknowledged.") % {"label": check_in.label_words}
    )


@guarded("rollout.request_change")
def start_phase(request, public_id):
    environment = environment_named_or_404(public_id, Environment.PRODUCTION)
    form = StartPhaseForm(request.POST)
    if not form.is_valid():
        error = next(iter(form.errors.values()))[0]
        return render_preflight(request, environment, status=422, start_form=form, error=error)
    data = form.cleaned_data
    now = timezone.now()
    checklist = preflight.evaluate(environment, now=now)
    refusal = preflight.start_refusal(
        checklist, tag=data["tag"], override_reason=data["window_override_reason"]
    )
    if not refusal and not data["confirmed"]:
        return render_preflight(request, environment, start_form=form, confirm=True)
    try:
        if refusal:
            preflight.refuse_start(
                environment=environment,
                person=request.user,
                reason=data["reason"],
                message=refusal,
                request=request,
            )
        result = preflight.start_phase(
            environment=environment,
            person=request.user,
            tag=data["tag"],
            reason=data["reason"],
            expected_version=data["expected_version"],
            override_reason=data["window_override_reason"],
            now=now,
            request=request,
        )
    except (controls.ControlRefused, controls.ConfigConflict) as refused:
        message = preflight.start_refusal_message(refused)
        return render_preflight(request, environment, status=409, error=message)
    if isinstance(result, PercentRequest):
        success = _(
            "Requested %(summary)s: waiting for a second person's approval (Controls above)."
        ) % {"summary": result.summary}
    else:
        success = _("Started: %(settings)s queued (version %(version)s).") % {
            "settings": result.settings.describe(),
            "version": result.version,
        }
    return render_preflight(request, environment, success=success)
